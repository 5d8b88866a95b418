/* util.h - small header-only helpers shared by every module.
 *
 * MIN/MAX evaluate their arguments once.  IS_ALIGNED and ROUND_* take
 * a power-of-two alignment.  Nothing here allocates or locks.
 */
#ifndef TIERBD_UTIL_H
#define TIERBD_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UTIL_CAT2(a, b) a##b
#define UTIL_CAT(a, b) UTIL_CAT2(a, b)
#define MIN_(a, b, n)                                                \
	({                                                           \
		__typeof__(a) UTIL_CAT(_a, n) = (a);                 \
		__typeof__(b) UTIL_CAT(_b, n) = (b);                 \
		UTIL_CAT(_a, n) < UTIL_CAT(_b, n) ? UTIL_CAT(_a, n)  \
						  : UTIL_CAT(_b, n); \
	})
#define MAX_(a, b, n)                                                \
	({                                                           \
		__typeof__(a) UTIL_CAT(_a, n) = (a);                 \
		__typeof__(b) UTIL_CAT(_b, n) = (b);                 \
		UTIL_CAT(_a, n) > UTIL_CAT(_b, n) ? UTIL_CAT(_a, n)  \
						  : UTIL_CAT(_b, n); \
	})
/* Both arguments should have the same type. */
#define MIN(a, b) MIN_(a, b, __COUNTER__)
#define MAX(a, b) MAX_(a, b, __COUNTER__)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define IS_ALIGNED(x, a) ((((uint64_t)(x)) & ((uint64_t)(a)-1)) == 0)
#define ROUND_DOWN(x, a) (((uint64_t)(x)) & ~((uint64_t)(a)-1))
#define ROUND_UP(x, a) ROUND_DOWN((uint64_t)(x) + (uint64_t)(a)-1, (a))
#define DIV_ROUND_UP(n, d) (((n) + (d)-1) / (d))

static inline bool is_power_of_2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static inline unsigned int log2_u64(uint64_t v)
{
	return 63 - __builtin_clzll(v);
}

/* Little-endian loads and stores for the on-disk formats (proto/). */
static inline uint16_t le16_get(const void *p)
{
	const uint8_t *b = p;
	return (uint16_t)(b[0] | b[1] << 8);
}
static inline uint32_t le32_get(const void *p)
{
	const uint8_t *b = p;
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
	       (uint32_t)b[3] << 24;
}
static inline uint64_t le64_get(const void *p)
{
	const uint8_t *b = p;
	return (uint64_t)le32_get(b) | (uint64_t)le32_get(b + 4) << 32;
}
static inline void le16_put(void *p, uint16_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
}
static inline void le32_put(void *p, uint32_t v)
{
	uint8_t *b = p;
	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}
static inline void le64_put(void *p, uint64_t v)
{
	le32_put(p, (uint32_t)v);
	le32_put((uint8_t *)p + 4, (uint32_t)(v >> 32));
}

#endif
