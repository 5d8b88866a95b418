/* parse.c - see parse.h. */
#include <ctype.h>
#include <string.h>

#include "parse.h"

int64_t parse_size(const char *s)
{
	static const char units[] = "KMGTPE";
	uint64_t v = 0;
	const char *p = s;
	unsigned shift = 0;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		if (v > (UINT64_C(1) << 62) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (*p) {
		const char *u = strchr(units, toupper((unsigned char)*p));
		if (!u)
			return -1;
		shift = 10 * (unsigned)(u - units + 1);
		p++;
		if (*p == 'i' && p[1] == 'B')
			p += 2;
		else if (*p == 'B')
			p++;
		if (*p)
			return -1;
	}
	if (shift >= 63 || v > (UINT64_C(1) << 62) >> shift)
		return -1;
	return (int64_t)(v << shift);
}
