# plot-matrix.gp - the PNG plots of bench/matrix.sh (issue 8), drawn by
# bench/run-all.sh:
#   gnuplot -e "dat='OUT_DIR'; png='docs'" bench/plot-matrix.gp
# reads OUT_DIR/{hot,cold,zipf}.dat (written by bench/matrix.sh) and
# writes docs/bench-hot.png, bench-cold.png, bench-zipf.png.  Bars are the
# median of the rounds' ratios (same-round ratios against the baseline),
# error bars their min..max; the dashed line is the goal.
if (!exists("dat")) dat = "/var/tmp/tierbd-matrix/out"
if (!exists("png")) png = "docs"
set terminal pngcairo size 1100,520 font 'DejaVu Sans,10'
set datafile missing "?"
set style data histogram
set style histogram errorbars gap 1 lw 1
set style fill solid 0.75 border -1
set boxwidth 0.9
set grid ytics
set key top left
set xtics rotate by -20 noenhanced
set yrange [0:*]

# hot: workload tierbd(med min max) nbdkit-memory(...) tierbd-nowb(...), vs nbdkit file
set output png . "/bench-hot.png"
set title "Fully hot: throughput against nbdkit's file plugin (1 = equal; dashed: goal 0.95)"
set ylabel "ratio to nbdkit file, same round"
set arrow 1 from graph 0, first 0.95 to graph 1, first 0.95 nohead dt 2 lw 2 lc rgb "red"
plot dat . "/hot.dat" using 2:3:4:xtic(1) title "tierbd" lc rgb "#1f77b4", \
     '' using 5:6:7 title "nbdkit memory" lc rgb "#999999", \
     '' using 8:9:10 title "tierbd, write-back held off" lc rgb "#aec7e8"
unset arrow 1

# cold: workload tierbd nbdkit-S3 curl, vs s3backer (log scale)
set output png . "/bench-cold.png"
set title "Fully cold (every chunk in Ceph RGW): against s3backer (1 = equal; dashed: goal 2)"
set ylabel "ratio to s3backer, same round (log)"
set logscale y
set yrange [0.002:*]
set arrow 1 from graph 0, first 2 to graph 1, first 2 nohead dt 2 lw 2 lc rgb "red"
set arrow 2 from graph 0, first 1 to graph 1, first 1 nohead dt 3 lc rgb "black"
plot dat . "/cold.dat" using 2:3:4:xtic(1) title "tierbd" lc rgb "#1f77b4", \
     '' using 5:6:7 title "nbdkit S3 + cache filter (64K objects)" lc rgb "#999999", \
     '' using 8:9:10 title "parallel curl (the store's limit)" lc rgb "#2ca02c"
unset arrow 1
unset arrow 2
unset logscale y

# zipf: contender hit(med min max) p99_ms(med min max)
set output png . "/bench-zipf.png"
set terminal pngcairo size 1100,450 font 'DejaVu Sans,10'
set output png . "/bench-zipf.png"
set multiplot layout 1,2 title "Zipf working set larger than the cache (same cache size for all)"
set style histogram errorbars gap 2 lw 1
set xtics norotate
set key off
set yrange [0:100]
set title "hit ratio (1 - GETs / reads)"
set ylabel "%"
plot dat . "/zipf.dat" using 2:3:4:xtic(1) lc rgb "#1f77b4"
set yrange [0:*]
set title "p99 read latency"
set ylabel "ms"
plot dat . "/zipf.dat" using 5:6:7:xtic(1) lc rgb "#ff7f0e"
unset multiplot
