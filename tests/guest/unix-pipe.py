"""unix-pipe.py SOCKET - a byte pipe between stdin/stdout and a unix socket.

qemu's guestfwd=...-cmd: runs this once per guest TCP connection with
the connection on stdin, stdout and stderr.  Every byte is passed
through unchanged, and when either side closes or fails, the process
exits and so closes both: when tierbd dies the guest's TCP connection
is closed, exactly as for a client connected to tierbd's own TCP port.
(nbdkit -s nbd socket=... as a proxy stays connected and answers every
request with an error instead; tests/test-guest-nbd-client.sh tries
both.)  Nothing may be written to stderr: it is the guest's connection.
"""
import os
import socket
import sys
import threading

devnull = os.open(os.devnull, os.O_WRONLY)
os.dup2(devnull, 2)


def main():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(sys.argv[1])
    except OSError:
        os._exit(1)

    def guest_to_server():
        try:
            while True:
                b = os.read(0, 1 << 16)
                if not b:
                    break
                s.sendall(b)
        except OSError:
            pass
        os._exit(0)

    threading.Thread(target=guest_to_server, daemon=True).start()
    try:
        while True:
            b = s.recv(1 << 16)
            if not b:
                break
            view = memoryview(b)
            while view:
                n = os.write(1, view)
                view = view[n:]
    except OSError:
        pass
    os._exit(0)


main()
