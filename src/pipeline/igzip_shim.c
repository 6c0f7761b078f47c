/*
 * The C side of the ISA-L gzip backend (src/pipeline/igzip.rs, feature
 * gzip-isal). It is the only code that sees ISA-L's `struct inflate_state`:
 * the C compiler lays it out from the installed igzip_lib.h, so the Rust side,
 * which holds an opaque pointer, cannot disagree with the library about its
 * size or field offsets (the struct is ~90 KB of tables and buffers, and its
 * layout is not part of any stable ABI promise).
 *
 * Every function takes a state from pulltime_igzip_new and not yet freed.
 */
#include <stdint.h>
#include <stdlib.h>

#include <isa-l/igzip_lib.h>

/* A new inflate state for gzip: isal_inflate parses each member's header and
 * checks its trailer (CRC32 and ISIZE). NULL when out of memory. */
struct inflate_state *pulltime_igzip_new(void)
{
	struct inflate_state *s = malloc(sizeof(*s));

	if (s == NULL)
		return NULL;
	isal_inflate_init(s);
	s->crc_flag = ISAL_GZIP;
	return s;
}

void pulltime_igzip_free(struct inflate_state *s)
{
	free(s);
}

/* Ready for the next gzip member (isal_inflate_reset keeps crc_flag). */
void pulltime_igzip_reset(struct inflate_state *s)
{
	isal_inflate_reset(s);
}

/*
 * One isal_inflate call over `in` (read only) into `out`. Sets *consumed and
 * *produced to the bytes taken from `in` and written to `out`, and *finished to
 * 1 when the member is complete, trailer checked (ISAL_BLOCK_FINISH). Bytes of
 * `in` past a member's end are not consumed. Returns isal_inflate's code:
 * ISAL_DECOMP_OK (0) or a negative error. The state keeps no pointer into `in`
 * or `out` after the call: what it needs of them it has copied.
 */
int pulltime_igzip_inflate(struct inflate_state *s, const uint8_t *in, uint32_t in_len,
			   uint8_t *out, uint32_t out_len, uint32_t *consumed,
			   uint32_t *produced, int *finished)
{
	int ret;

	/* isal_inflate only reads through next_in; the field is not const. */
	s->next_in = (uint8_t *)in;
	s->avail_in = in_len;
	s->next_out = out;
	s->avail_out = out_len;
	ret = isal_inflate(s);
	*consumed = in_len - s->avail_in;
	*produced = out_len - s->avail_out;
	*finished = s->block_state == ISAL_BLOCK_FINISH;
	s->next_in = NULL;
	s->avail_in = 0;
	s->next_out = NULL;
	s->avail_out = 0;
	return ret;
}
