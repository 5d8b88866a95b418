/* parse.h - strict parsing of sizes for the engine and tools.
 *
 * parse_size: decimal digits with an optional binary suffix K, M, G, T,
 * P or E (any case, optional "iB"/"B"); nothing else.  Returns the
 * value, or -1 for malformed input or overflow.
 */
#ifndef TIERBD_PARSE_H
#define TIERBD_PARSE_H

#include <stdint.h>

int64_t parse_size(const char *s);

#endif
