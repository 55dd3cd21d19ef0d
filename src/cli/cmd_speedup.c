/* cmd_speedup.c - `shrinkwrap speedup MODEL MASKS --out FILE`: remove pruned channels for real,
 * show every layer before and after, self-check, and write the smaller model file. */
#include <stdlib.h>
#include <string.h>

#include "cli/options.h"
#include "io/model_file.h"
#include "speedup/speedup.h"

enum {
    OPT_OUT = SW_OPT_FIRST_COMMAND,
    OPT_FORCE,
    OPT_PROBE_BATCH,
    OPT_TOLERANCE,
    OPT_FORBID_UNION,
};

static const struct option speedup_own_options[] = {
    {"out", required_argument, NULL, OPT_OUT},
    {"force", no_argument, NULL, OPT_FORCE},
    {"probe-batch", required_argument, NULL, OPT_PROBE_BATCH},
    {"tolerance", required_argument, NULL, OPT_TOLERANCE},
    {"forbid-union", no_argument, NULL, OPT_FORBID_UNION},
    {"help", no_argument, NULL, SW_OPT_HELP},
    {"threads", required_argument, NULL, SW_OPT_THREADS},
    {"seed", required_argument, NULL, SW_OPT_SEED},
    {0, 0, 0, 0},
};

static void print_help(FILE *out) {
    fprintf(out,
            "usage: shrinkwrap speedup MODEL MASKS [--out FILE] [OPTIONS]\n\n"
            "Removes the channels that MASKS prune from MODEL (a .safetensors model file or a\n"
            "zoo name) and writes a physically smaller model that computes exactly what the\n"
            "masked model computes: a pruned channel is zero downstream, its bias and\n"
            "BatchNorm shift included. MASKS is a masks file (one tensor per module.target,\n"
            "e.g. from `shrinkwrap prune`). Prints every layer's output shape, parameters and\n"
            "FLOPs before and after, the dependency groups, and a self-check: the masked and\n"
            "the sped-up model run on a random probe batch and must agree.\n\n"
            "  --out FILE           where to write the sped-up model (.safetensors); without\n"
            "                       it, only the report is printed\n"
            "  --probe-batch N      samples in the self-check's probe batch (default 8)\n"
            "  --seed N             seed of the probe batch (default 0)\n"
            "  --tolerance X        largest accepted difference, relative to the largest\n"
            "                       output of the masked model (default 1e-4)\n"
            "  --force              write the model even when the self-check fails\n"
            "  --forbid-union       fail when the members of a dependency group (convs whose\n"
            "                       outputs are added) prune different channels, instead of\n"
            "                       keeping the union\n"
            "  --threads N          threads for the self-check (default: all cores)\n\n"
            "docs/SPEEDUP.md explains the rules and how they differ from NNI's ModelSpeedup.\n");
}

/* "[32, 28, 28]" without the spaces, to keep the table narrow. */
static const char *compact_shape(const sw_shape *s, char *buf, size_t size) {
    if (s->ndim == 0) return "-";
    char tmp[64];
    sw_shape_format(s, tmp, sizeof tmp);
    size_t j = 0;
    for (size_t i = 0; tmp[i] && j + 1 < size; i++)
        if (tmp[i] != ' ') buf[j++] = tmp[i];
    buf[j] = '\0';
    return buf;
}

static void print_layers(const sw_speedup_report *r) {
    char ob[48], oa[48], wb[48], wa[48], pb[16], pa[16], fb[16], fa[16], arrow[112];
    printf("%-26s %-12s %-27s %-31s %-17s %-17s %s\n", "module", "type", "output before -> after",
           "weight before -> after", "params", "FLOPs", "channels");
    for (int i = 0; i < r->n_layers; i++) {
        const sw_speedup_layer *l = &r->layers[i];
        char notes[96] = "";
        size_t at = 0;
        if (l->channels_dead)
            at += (size_t)snprintf(notes + at, sizeof notes - at, "%d dead", l->channels_dead);
        if (l->channels_unpruned && at < sizeof notes)
            at += (size_t)snprintf(notes + at, sizeof notes - at, "%s%d kept as zeros",
                                   at ? ", " : "", l->channels_unpruned);
        if (l->dep_group >= 0 && at < sizeof notes)
            snprintf(notes + at, sizeof notes - at, "%sgroup %d", at ? ", " : "", l->dep_group);
        if (l->removed) {
            printf("%-26s %-12s %-27s %-31s %-17s %-17s removed\n", l->name, l->type_before,
                   compact_shape(&l->out_before, ob, sizeof ob),
                   compact_shape(&l->weight_before, wb, sizeof wb),
                   sw_cli_human((double)l->params_before, pb, sizeof pb),
                   sw_cli_human(l->flops_before, fb, sizeof fb));
            continue;
        }
        char out_col[112], w_col[112], p_col[40], f_col[40], type[40];
        snprintf(out_col, sizeof out_col, "%s -> %s", compact_shape(&l->out_before, ob, sizeof ob),
                 compact_shape(&l->out_after, oa, sizeof oa));
        if (l->weight_before.ndim)
            snprintf(w_col, sizeof w_col, "%s -> %s",
                     compact_shape(&l->weight_before, wb, sizeof wb),
                     compact_shape(&l->weight_after, wa, sizeof wa));
        else
            snprintf(w_col, sizeof w_col, "-");
        snprintf(p_col, sizeof p_col, "%s -> %s",
                 sw_cli_human((double)l->params_before, pb, sizeof pb),
                 sw_cli_human((double)l->params_after, pa, sizeof pa));
        snprintf(f_col, sizeof f_col, "%s -> %s", sw_cli_human(l->flops_before, fb, sizeof fb),
                 sw_cli_human(l->flops_after, fa, sizeof fa));
        if (strcmp(l->type_before, l->type_after) != 0)
            snprintf(type, sizeof type, "%s->%s", l->type_before, l->type_after);
        else
            snprintf(type, sizeof type, "%s", l->type_before);
        snprintf(arrow, sizeof arrow, "%d -> %d", l->channels_before, l->channels_after);
        printf("%-26s %-12s %-27s %-31s %-17s %-17s %s%s%s\n", l->name, type, out_col, w_col, p_col,
               f_col, arrow, *notes ? "  " : "", notes);
    }
}

static void print_summary(const sw_speedup_report *r, const sw_mask_set *masks) {
    char a[16], b[16];
    printf("\nparameters %zu -> %zu (%.1f%%, %.2fx fewer)\n", r->params_before, r->params_after,
           100.0 * (double)r->params_after / (double)r->params_before,
           r->params_after ? (double)r->params_before / (double)r->params_after : 0.0);
    printf("FLOPs      %s -> %s per image (%.1f%%, %.2fx fewer)\n",
           sw_cli_human(r->flops_before, a, sizeof a), sw_cli_human(r->flops_after, b, sizeof b),
           100.0 * r->flops_after / r->flops_before,
           r->flops_after > 0 ? r->flops_before / r->flops_after : 0.0);
    printf("masks      %d tensors; %d node(s) removed; %d pruned Conv2d/Linear channel(s) kept "
           "as zeros\n",
           masks->n, r->n_removed, r->n_unpruned);
    for (int g = 0; g < r->n_dep_groups; g++) {
        printf("%s", g == 0 ? "dependency groups (channels kept if any member keeps them):\n" : "");
        printf("  group %d:", g);
        for (int i = 0; i < r->n_layers; i++)
            if (r->layers[i].dep_group == g) printf(" %s", r->layers[i].name);
        printf("\n");
    }
    if (r->checked) {
        const sw_speedup_check *c = &r->check;
        printf("self-check on %d probe samples: max |sped-up - masked| = %.3g, max |masked| = "
               "%.3g, relative %.3g (tolerance %.3g): %s\n",
               c->batch, (double)c->max_abs_diff, (double)c->max_abs_ref, (double)c->rel_diff,
               (double)c->tolerance, c->within_tolerance ? "ok" : "FAILED");
        if (!c->within_tolerance && c->worst_layer >= 0)
            printf("  the layer that disagrees most: %s (max diff %.3g)\n",
                   r->layers[c->worst_layer].name, (double)r->layers[c->worst_layer].max_abs_diff);
    }
    printf("time       analysis %.1f ms, rebuild %.1f ms, self-check %.1f ms\n",
           1e3 * r->analysis_seconds, 1e3 * r->rebuild_seconds, 1e3 * r->check_seconds);
}

int sw_cmd_speedup(int argc, char **argv) {
    const char *cmd = "speedup";
    const char *out_path = NULL;
    sw_speedup_options opt = sw_speedup_options_default();
    sw_cli_common common;
    sw_cli_common_defaults(&common);
    optind = 1;
    int id;
    while ((id = getopt_long(argc, argv, "h", speedup_own_options, NULL)) != -1) {
        long v;
        double f;
        switch (id) {
        case SW_OPT_HELP:
            print_help(stdout);
            return SW_EXIT_OK;
        case OPT_OUT:
            out_path = optarg;
            break;
        case OPT_FORCE:
            opt.force = true;
            break;
        case OPT_FORBID_UNION:
            opt.forbid_union = true;
            break;
        case OPT_PROBE_BATCH:
            if (!sw_cli_parse_int(cmd, "--probe-batch", optarg, 1, 4096, &v)) return SW_EXIT_USAGE;
            opt.probe_batch = (int)v;
            break;
        case OPT_TOLERANCE:
            if (!sw_cli_parse_float(cmd, "--tolerance", optarg, 0, 1, &f)) return SW_EXIT_USAGE;
            opt.tolerance = (float)f;
            break;
        case SW_OPT_THREADS:
        case SW_OPT_SEED:
            if (sw_common_option(cmd, id, optarg, &common) < 0) return SW_EXIT_USAGE;
            break;
        default:
            return sw_cli_usage_error(cmd, "unknown or incomplete option");
        }
    }
    if (optind != argc - 2) return sw_cli_usage_error(cmd, "expects a MODEL and a MASKS file");
    const char *model_spec = argv[optind], *masks_path = argv[optind + 1];
    opt.seed = common.seed;
    sw_cli_common_apply(&common);

    int rc = SW_EXIT_FAIL;
    sw_model *model = NULL, *fast = NULL;
    sw_mask_set *masks = NULL;
    sw_speedup *s = NULL;
    if (sw_cli_load_model(model_spec, common.seed, &model) != SW_OK) {
        rc = sw_cli_report(model_spec);
        goto done;
    }
    if (sw_mask_set_load(masks_path, &masks) != SW_OK) {
        rc = sw_cli_report(NULL);
        goto done;
    }
    if (sw_speedup_new(model, NULL, masks, &opt, &s) != SW_OK) {
        rc = sw_cli_report(masks_path);
        goto done;
    }
    sw_status st = sw_speedup_model(s, &fast);
    const sw_speedup_report *r = sw_speedup_get_report(s);
    printf("speedup of %s (%s) with %s\n\n", model->arch, model_spec, masks_path);
    if (r->built) {
        print_layers(r);
        print_summary(r, masks);
    }
    fflush(stdout);
    if (st != SW_OK) {
        rc = sw_cli_report(NULL);
        goto done;
    }
    if (!r->check.within_tolerance)
        fprintf(stderr, "shrinkwrap speedup: warning: the self-check failed; writing the model "
                        "anyway because of --force\n");
    if (out_path) {
        char diff[32], rel[32];
        snprintf(diff, sizeof diff, "%.9g", (double)r->check.max_abs_diff);
        snprintf(rel, sizeof rel, "%.9g", (double)r->check.rel_diff);
        const char *meta[] = {"speedup_of",
                              model_spec,
                              "speedup_masks",
                              masks_path,
                              "speedup_max_abs_diff",
                              diff,
                              "speedup_rel_diff",
                              rel,
                              NULL};
        if (sw_model_save(fast, out_path, meta) != SW_OK) {
            rc = sw_cli_report(out_path);
            goto done;
        }
        printf("wrote %s\n", out_path);
    }
    rc = SW_EXIT_OK;
done:
    sw_model_free(fast);
    sw_speedup_free(s);
    sw_mask_set_free(masks);
    sw_model_free(model);
    return rc;
}
