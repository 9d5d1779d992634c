/* stream_names.c: printable names for the stream's wire enums and errors. */
#include "stream.h"

const char *stream_type_to_str(uint32_t type)
{
	switch (type) {
	case STREAM_HELLO:		return "HELLO";
	case STREAM_HELLO_ACK:		return "HELLO_ACK";
	case STREAM_GUEST_INFO:		return "GUEST_INFO";
	case STREAM_PAGE_DATA:		return "PAGE_DATA";
	case STREAM_ZERO_PAGES:		return "ZERO_PAGES";
	case STREAM_XBZRLE_PAGES:	return "XBZRLE_PAGES";
	case STREAM_CPU_STATE:		return "CPU_STATE";
	case STREAM_DIGEST:		return "DIGEST";
	case STREAM_END:		return "END";
	case STREAM_COMMIT:		return "COMMIT";
	case STREAM_NACK:		return "NACK";
	case STREAM_ERROR:		return "ERROR";
	case STREAM_CANCEL:		return "CANCEL";
	case STREAM_DEVICE_STATE:	return "DEVICE_STATE";
	case STREAM_READY:		return "READY";
	case STREAM_GO:			return "GO";
	case STREAM_VERIFIED:		return "VERIFIED";
	case STREAM_REGION_DIGEST:	return "REGION_DIGEST";
	case STREAM_ITER_END:		return "ITER_END";
	}
	return (type & STREAM_TYPE_OPTIONAL) ? "UNKNOWN-OPTIONAL" : "UNKNOWN";
}

static const char *const stream_err_names[STREAM_E_COUNT_] = {
	[STREAM_OK]		= "success",
	[STREAM_E_MAGIC]	= "not a ferry stream (bad magic)",
	[STREAM_E_VERSION]	= "unsupported stream version",
	[STREAM_E_HEADER]	= "invalid stream header",
	[STREAM_E_TOO_LONG]	= "record longer than the maximum",
	[STREAM_E_UNKNOWN]	= "unknown mandatory record type",
	[STREAM_E_LENGTH]	= "record length wrong for its type",
	[STREAM_E_RESERVED]	= "reserved field or padding not zero",
	[STREAM_E_CRC]		= "CRC32C mismatch",
	[STREAM_E_ORDER]	= "record out of order",
	[STREAM_E_RANGE]	= "value out of range",
	[STREAM_E_TRUNCATED]	= "stream truncated",
	[STREAM_E_TRAILING]	= "data after the final record",
	[STREAM_E_NOMEM]	= "out of memory",
	[STREAM_E_NOSPACE]	= "output buffer too small",
	[STREAM_E_IO]		= "output failed",
	[STREAM_E_INVAL]	= "invalid argument",
	[STREAM_E_XBZRLE]	= "XBZRLE data does not decode",
	[STREAM_E_DIGEST]	= "memory digest mismatch",
	[STREAM_E_NOPAGE]	= "guest page not available",
	[STREAM_E_CPU]		= "CPU state refused",
};

const char *stream_err_to_str(int err)
{
	if (err < 0)
		err = -err;
	if (err >= STREAM_E_COUNT_)
		return "UNKNOWN";
	return stream_err_names[err];
}

const char *stream_refusal_to_str(uint32_t status)
{
	switch (status) {
	case STREAM_REFUSE_NONE:	return "accepted";
	case STREAM_REFUSE_PAGE_SIZE:	return "page size not supported";
	case STREAM_REFUSE_GUEST_SIZE:	return "guest does not fit";
	case STREAM_REFUSE_DIGEST:	return "no digest in common";
	case STREAM_REFUSE_CODEC:	return "no RAW codec offered";
	case STREAM_REFUSE_BUSY:	return "destination busy";
	case STREAM_REFUSE_POLICY:	return "refused by policy";
	case STREAM_REFUSE_PLATFORM:	return "cannot run the guest's platform";
	}
	return "UNKNOWN";
}

const char *stream_nack_to_str(uint32_t code)
{
	switch (code) {
	case STREAM_NACK_DIGEST:	return "digest mismatch";
	case STREAM_NACK_CPU_STATE:	return "CPU state missing or unusable";
	case STREAM_NACK_INCOMPLETE:	return "stream incomplete";
	case STREAM_NACK_INTERNAL:	return "destination internal failure";
	case STREAM_NACK_START:		return "guest could not start";
	case STREAM_NACK_REGIONS:	return "memory differs after the switch-over";
	}
	return "UNKNOWN";
}

const char *stream_wire_error_to_str(uint32_t code)
{
	switch (code) {
	case STREAM_WERR_PROTOCOL:	return "protocol error";
	case STREAM_WERR_RESOURCES:	return "out of resources";
	case STREAM_WERR_TIMEOUT:	return "timeout";
	case STREAM_WERR_INTERNAL:	return "internal error";
	case STREAM_WERR_OPERATOR:	return "stopped by operator";
	}
	return "UNKNOWN";
}

const char *stream_mode_to_str(uint32_t mode)
{
	switch (mode) {
	case STREAM_MODE_NONE:	return "none";
	case STREAM_MODE_VMX:	return "vmx";
	case STREAM_MODE_SVM:	return "svm";
	case STREAM_MODE_PTE:	return "pte";
	}
	return "UNKNOWN";
}

const char *stream_cap_to_str(uint64_t one_cap)
{
	if (one_cap == STREAM_CAP_CRC32C)	return "crc32c";
	if (one_cap == STREAM_CAP_XSAVE)	return "xsave";
	if (one_cap == STREAM_CAP_ITER_STATS)	return "iter-stats";
	if (one_cap == STREAM_CAP_PLATFORM_PC)	return "platform-pc";
	if (one_cap == STREAM_CAP_VERIFY_AFTER)	return "verify-after";
	return "UNKNOWN";
}

const char *stream_codec_to_str(uint32_t one_codec)
{
	switch (one_codec) {
	case STREAM_CODEC_RAW:		return "raw";
	case STREAM_CODEC_ZERO:		return "zero";
	case STREAM_CODEC_XBZRLE:	return "xbzrle";
	}
	return "UNKNOWN";
}
