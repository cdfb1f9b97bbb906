/* spandsp's own audio loop, for the binding-overhead figure of 'bench fax':
 * two fax endpoints back to back, 160 samples per step, each frame coded to
 * G.711 u-law and back (what RTP carries), as the Python sessions do.
 * Prints simulated seconds and CPU seconds.
 * usage: fax_loop SRC.tif DST.tif ECM(0|1) MODEMS [RUN(1|0)]
 * RUN=0 sets up and exits: the baseline for counting the loop's instructions. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <spandsp.h>

static int done_a = 0, done_b = 0;
static void phase_e(t30_state_t *s, void *user, int code) { *(int *) user = code == T30_ERR_OK ? 1 : -1; }

static void step(fax_state_t *from, g711_state_t *enc, g711_state_t *dec, fax_state_t *to) {
    int16_t pcm[160];
    uint8_t law[160];
    int n = fax_tx(from, pcm, 160);
    for (int i = n; i < 160; i++) pcm[i] = 0;
    g711_encode(enc, law, pcm, 160);
    g711_decode(dec, pcm, law, 160);
    fax_rx(to, pcm, 160);
}

int main(int argc, char **argv) {
    if (argc != 5 && argc != 6) return 2;
    int run = argc == 6 ? atoi(argv[5]) : 1;
    int ecm = atoi(argv[3]), modems = atoi(argv[4]);
    fax_state_t *a = fax_init(NULL, 1), *b = fax_init(NULL, 0);
    t30_state_t *ta = fax_get_t30_state(a), *tb = fax_get_t30_state(b);
    g711_state_t *ea = g711_init(NULL, G711_ULAW), *da = g711_init(NULL, G711_ULAW);
    g711_state_t *eb = g711_init(NULL, G711_ULAW), *db = g711_init(NULL, G711_ULAW);
    fax_set_transmit_on_idle(a, 1); fax_set_transmit_on_idle(b, 1);
    t30_set_tx_file(ta, argv[1], -1, -1); t30_set_rx_file(tb, argv[2], -1);
    int comp = T30_SUPPORT_T4_1D_COMPRESSION | T30_SUPPORT_T4_2D_COMPRESSION | (ecm ? T30_SUPPORT_T6_COMPRESSION : 0);
    t30_set_ecm_capability(ta, ecm); t30_set_ecm_capability(tb, ecm);
    t30_set_supported_modems(ta, modems); t30_set_supported_modems(tb, modems);
    t30_set_supported_compressions(ta, comp); t30_set_supported_compressions(tb, comp);
    t30_set_phase_e_handler(ta, phase_e, &done_a); t30_set_phase_e_handler(tb, phase_e, &done_b);
    long samples = 0;
    clock_t c0 = clock();
    if (!run) return 0;
    while (!(done_a && done_b) && samples < 8000L * 600) {
        step(a, ea, db, b);
        step(b, eb, da, a);
        samples += 160;
    }
    double cpu = (double) (clock() - c0) / CLOCKS_PER_SEC;
    printf("%.3f %.6f %d %d\n", samples / 8000.0, cpu, done_a, done_b);
    return done_a == 1 && done_b == 1 ? 0 : 1;
}
