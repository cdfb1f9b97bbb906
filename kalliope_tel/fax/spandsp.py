"""cffi binding (ABI mode) over the spandsp calls the fax engine uses.

Every ``*_init(NULL, ...)`` allocates its own state, so the states stay
opaque; only ``t30_stats_t`` is declared field by field, copied from
spandsp 0.0.6's ``t30.h`` (Debian's libspandsp-dev). Callbacks passed to C
must stay referenced for as long as C may call them: the session objects
keep them.
"""

from __future__ import annotations

from typing import Any

import cffi

from kalliope_tel.errors import KalliopeError

CDEF = """
typedef struct fax_state_s fax_state_t;
typedef struct t30_state_s t30_state_t;
typedef struct t38_terminal_state_s t38_terminal_state_t;
typedef struct t38_core_state_s t38_core_state_t;

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
const char *t30_completion_code_to_str(int result);
"""

# t30.h enums
V27TER, V29, V17 = 0x01, 0x02, 0x04
T4_1D, T4_2D, T6 = 0x02, 0x04, 0x08
T30_ERR_OK = 0

ffi = cffi.FFI()
ffi.cdef(CDEF)
_lib: Any = None


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
