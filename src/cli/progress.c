/* progress.c - the headless progress display: a redrawn bar on a terminal, plain lines when
 * the output is a pipe or a file (CI logs stay readable). */
#include "cli/cli.h"

#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define SW_PROGRESS_REDRAW_SECONDS 0.1

void sw_progress_init(sw_progress *p, FILE *out, bool quiet) {
    *p = (sw_progress){.out = out, .quiet = quiet, .width = 80};
    int fd = fileno(out);
    p->tty = isatty(fd);
    struct winsize ws;
    if (p->tty && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40) p->width = ws.ws_col;
}

static void format_eta(double seconds, char *buf, size_t size) {
    if (seconds < 0 || seconds > 99 * 3600) {
        snprintf(buf, size, "--:--");
        return;
    }
    int s = (int)(seconds + 0.5);
    if (s >= 3600)
        snprintf(buf, size, "%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
    else
        snprintf(buf, size, "%02d:%02d", s / 60, s % 60);
}

/* "step 120/2345 epoch 1/5 loss 0.4312 lr 0.0500 5123 img/s ETA 00:42" */
static void format_status(const sw_metric_event *ev, char *buf, size_t size) {
    char eta[16];
    double remaining = -1;
    if (ev->total_steps > 0 && ev->step > 0)
        remaining = ev->elapsed / (double)ev->step * (double)(ev->total_steps - ev->step);
    format_eta(remaining, eta, sizeof eta);
    snprintf(buf, size, "%ld/%ld ep %d/%d loss %.4f lr %.4g %.0f img/s ETA %s", ev->step,
             ev->total_steps, ev->epoch + 1, ev->total_epochs, ev->loss, ev->lr,
             ev->images_per_sec, eta);
}

static void draw_bar(sw_progress *p, const sw_metric_event *ev) {
    char status[160];
    format_status(ev, status, sizeof status);
    int bar = p->width - (int)strlen(status) - 10;
    if (bar > 40) bar = 40;
    double frac = ev->total_steps > 0 ? (double)ev->step / (double)ev->total_steps : 0;
    if (frac > 1) frac = 1;
    fputs("\r\033[2K", p->out);
    if (bar >= 10) {
        int filled = (int)(frac * bar + 0.5);
        fputc('[', p->out);
        for (int i = 0; i < bar; i++) fputc(i < filled ? '#' : '.', p->out);
        fputs("] ", p->out);
    }
    fprintf(p->out, "%3.0f%% %s", frac * 100, status);
    fflush(p->out);
}

void sw_progress_finish(sw_progress *p) {
    if (p->tty && p->last_draw > 0) {
        fputs("\r\033[2K", p->out);
        fflush(p->out);
    }
    p->last_draw = 0;
}

void sw_progress_listener(void *ctx, const sw_metric_event *ev) {
    sw_progress *p = ctx;
    if (p->quiet) return; /* errors still reach stderr through the caller */
    double now = sw_cli_now();
    switch (ev->kind) {
    case SW_METRIC_BEGIN:
        fprintf(p->out, "%s: %ld steps, %d epoch(s)\n", ev->phase ? ev->phase : "train",
                ev->total_steps, ev->total_epochs);
        fflush(p->out);
        p->last_line_step = 0;
        break;
    case SW_METRIC_STEP:
        if (p->tty) {
            if (now - p->last_draw >= SW_PROGRESS_REDRAW_SECONDS || ev->step == ev->total_steps) {
                draw_bar(p, ev);
                p->last_draw = now;
            }
        } else {
            /* Plain lines: about ten per run, and at least one every 30 s. */
            long every = ev->total_steps > 10 ? ev->total_steps / 10 : 1;
            if (ev->step - p->last_line_step >= every || now - p->last_draw >= 30) {
                char status[160];
                format_status(ev, status, sizeof status);
                fprintf(p->out, "  %s\n", status);
                fflush(p->out);
                p->last_line_step = ev->step;
                p->last_draw = now;
            }
        }
        break;
    case SW_METRIC_EPOCH:
        sw_progress_finish(p);
        fprintf(p->out, "epoch %d/%d  loss %.4f  %.0f img/s  %.1fs\n", ev->epoch,
                ev->total_epochs, ev->loss, ev->images_per_sec, ev->elapsed);
        fflush(p->out);
        break;
    case SW_METRIC_EVAL:
        sw_progress_finish(p);
        fprintf(p->out, "  test accuracy %.2f%%  loss %.4f\n", ev->accuracy * 100, ev->loss);
        fflush(p->out);
        break;
    case SW_METRIC_END:
        sw_progress_finish(p);
        if (ev->message && strcmp(ev->message, "completed") != 0)
            fprintf(p->out, "%s: %s after %ld steps\n", ev->phase ? ev->phase : "train",
                    ev->message, ev->step);
        fflush(p->out);
        break;
    case SW_METRIC_MESSAGE:
        sw_progress_finish(p);
        if (ev->message) fprintf(p->out, "%s\n", ev->message);
        fflush(p->out);
        break;
    }
}
