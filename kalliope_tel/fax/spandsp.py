"""cffi binding over the spandsp calls the fax engine uses.

Every ``*_init(NULL, ...)`` allocates its own state, so the states stay
opaque; only ``t30_stats_t`` is declared field by field, copied from
spandsp 0.0.6's ``t30.h`` (Debian's libspandsp-dev). Callbacks passed to C
must stay referenced for as long as C may call them: the session objects
keep them.

Two modes, same declarations. API mode compiles a small extension against
spandsp's header once (cached, see ``spandsp_build``): a call costs about
0.15 µs, and the compiler checks our struct against the real one. ABI mode
(``dlopen``, through libffi) needs no compiler but costs ~1.2 µs per call on
this class of machine, four calls per 20 ms frame: that alone put the
binding 35 % behind spandsp's own C loop. ABI mode is the fallback when no
compiler or header is at hand.
"""

from __future__ import annotations

import os
from typing import Any, cast

import cffi

from kalliope_tel.errors import KalliopeError

CDEF = """
typedef struct fax_state_s fax_state_t;
typedef struct t30_state_s t30_state_t;
typedef struct t38_terminal_state_s t38_terminal_state_t;
typedef struct t38_core_state_s t38_core_state_t;
typedef struct g711_state_s g711_state_t;
typedef struct logging_state_s logging_state_t;
typedef void (*message_handler_func_t)(int level, const char *text);

typedef struct {
    int bit_rate;
    int error_correcting_mode;
    int pages_tx;
    int pages_rx;
    int pages_in_file;
    int x_resolution;
    int y_resolution;
    int width;
    int length;
    int image_size;
    int encoding;
    int bad_rows;
    int longest_bad_row_run;
    int error_correcting_mode_retries;
    int current_status;
} t30_stats_t;

typedef int (t30_phase_b_handler_t)(t30_state_t *s, void *user_data, int result);
typedef int (t30_phase_d_handler_t)(t30_state_t *s, void *user_data, int result);
typedef void (t30_phase_e_handler_t)(t30_state_t *s, void *user_data, int completion_code);
typedef int (t38_tx_packet_handler_t)(t38_core_state_t *s, void *user_data, const uint8_t *buf, int len, int count);

fax_state_t *fax_init(fax_state_t *s, int calling_party);
int fax_free(fax_state_t *s);
int fax_rx(fax_state_t *s, int16_t *amp, int len);
int fax_tx(fax_state_t *s, int16_t *amp, int max_len);
int fax_rx_fillin(fax_state_t *s, int len);
logging_state_t *fax_get_logging_state(fax_state_t *s);
void fax_set_transmit_on_idle(fax_state_t *s, int transmit_on_idle);
t30_state_t *fax_get_t30_state(fax_state_t *s);

t38_terminal_state_t *t38_terminal_init(t38_terminal_state_t *s, int calling_party,
                                        t38_tx_packet_handler_t *tx_packet_handler, void *tx_packet_user_data);
int t38_terminal_free(t38_terminal_state_t *s);
int t38_terminal_send_timeout(t38_terminal_state_t *s, int samples);
t30_state_t *t38_terminal_get_t30_state(t38_terminal_state_t *s);
t38_core_state_t *t38_terminal_get_t38_core_state(t38_terminal_state_t *s);
int t38_core_rx_ifp_packet(t38_core_state_t *s, const uint8_t *buf, int len, uint16_t seq_no);

int t30_set_tx_ident(t30_state_t *s, const char *id);
const char *t30_get_rx_ident(t30_state_t *s);
int t30_set_tx_page_header_info(t30_state_t *s, const char *info);
void t30_set_rx_file(t30_state_t *s, const char *file, int stop_page);
void t30_set_tx_file(t30_state_t *s, const char *file, int start_page, int stop_page);
int t30_set_ecm_capability(t30_state_t *s, int enabled);
int t30_set_supported_modems(t30_state_t *s, int supported_modems);
int t30_set_supported_compressions(t30_state_t *s, int supported_compressions);
void t30_set_phase_b_handler(t30_state_t *s, t30_phase_b_handler_t *handler, void *user_data);
void t30_set_phase_d_handler(t30_state_t *s, t30_phase_d_handler_t *handler, void *user_data);
void t30_set_phase_e_handler(t30_state_t *s, t30_phase_e_handler_t *handler, void *user_data);
void t30_get_transfer_statistics(t30_state_t *s, t30_stats_t *t);
void t30_terminate(t30_state_t *s);
const char *t30_completion_code_to_str(int result);
logging_state_t *t30_get_logging_state(t30_state_t *s);
logging_state_t *t38_terminal_get_logging_state(t38_terminal_state_t *s);
logging_state_t *t38_core_get_logging_state(t38_core_state_t *s);

g711_state_t *g711_init(g711_state_t *s, int mode);
int g711_free(g711_state_t *s);
int g711_decode(g711_state_t *s, int16_t amp[], const uint8_t g711_data[], int g711_bytes);
int g711_encode(g711_state_t *s, uint8_t g711_data[], const int16_t amp[], int len);

int span_log_set_level(logging_state_t *s, int level);
int span_log_set_tag(logging_state_t *s, const char *tag);
void span_log_set_message_handler(logging_state_t *s, message_handler_func_t func);

/* API mode only (defined in spandsp_build.HELPERS): one crossing per frame. */
int kt_exchange_g711(fax_state_t *s, g711_state_t *g, int16_t *scratch,
                     const uint8_t *rx, int rx_len, uint8_t *tx, int tx_len);
"""

# C helpers compiled into the API-mode module: a 20 ms frame in and out with
# one call from Python instead of four (decode, rx, tx, encode).
HELPERS = """
static int kt_exchange_g711(fax_state_t *s, g711_state_t *g, int16_t *scratch,
                            const uint8_t *rx, int rx_len, uint8_t *tx, int tx_len)
{
    int made;
    if (rx_len > 0) {
        g711_decode(g, scratch, rx, rx_len);
        fax_rx(s, scratch, rx_len);
    } else if (rx_len < 0) {
        fax_rx_fillin(s, -rx_len);
    }
    made = fax_tx(s, scratch, tx_len);
    if (made < tx_len)
        memset(scratch + made, 0, (tx_len - made) * sizeof(int16_t));
    g711_encode(g, tx, scratch, tx_len);
    return made;
}
"""

# t30.h enums
V27TER, V29, V17 = 0x01, 0x02, 0x04
T4_1D, T4_2D, T6 = 0x02, 0x04, 0x08
T30_ERR_OK = 0
# g711.h
G711_ALAW, G711_ULAW = 0, 1
# logging.h: severities, and the flag that puts the session's tag on each line
SPAN_LOG_WARNING, SPAN_LOG_PROTOCOL_WARNING, SPAN_LOG_FLOW = 2, 4, 5
SPAN_LOG_SHOW_TAG = 0x2000


def _load() -> tuple[cffi.FFI, Any, str]:
    if os.environ.get("KALLIOPE_SPANDSP_ABI") != "1":
        from kalliope_tel.fax.spandsp_build import compiled_module

        module = compiled_module(CDEF, HELPERS)
        if module is not None:
            return cast(cffi.FFI, module.ffi), module.lib, "api"
    abi = cffi.FFI()
    abi.cdef(CDEF)  # kt_* helpers are declared but absent: sessions check before use
    return abi, None, "abi"


ffi, _lib, MODE = _load()


class SpandspMissing(KalliopeError):
    """libspandsp cannot be loaded."""


def lib() -> Any:
    """The loaded library (loaded on first use, with a clear error when missing)."""
    global _lib
    if _lib is None:
        try:
            _lib = ffi.dlopen("libspandsp.so.2")
        except OSError as exc:
            raise SpandspMissing(
                f"libspandsp is not installed ({exc}); install Debian's libspandsp-dev (scripts/bootstrap.sh does)"
            ) from None
    return _lib


def c_text(pointer: Any) -> str:
    """A C string as text ("" for NULL)."""
    if pointer == ffi.NULL:
        return ""
    raw = ffi.string(pointer)
    return raw.decode(errors="replace") if isinstance(raw, bytes) else raw


def completion_text(code: int) -> str:
    return c_text(lib().t30_completion_code_to_str(code))
