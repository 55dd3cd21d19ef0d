/* cmd_info.c - `shrinkwrap info MODEL [--masks FILE | --compare OTHER]`: the module tree with
 * types, output shapes, parameters and FLOPs per node, and the totals; with masks, each module's
 * sparsity; with a second model (typically the sped-up one), both side by side by module name. */
#include <string.h>

#include "cli/options.h"
#include "compress/masks_io.h"
#include "compress/pruning/pruners.h"
#include "nn/module_tree.h"

static void print_help(FILE *out) {
    fprintf(out, "usage: shrinkwrap info MODEL [--masks FILE | --compare OTHER]\n\n"
                 "Shows the module tree of MODEL (a .safetensors model file or a zoo name): each\n"
                 "module's type, output shape, parameters and forward FLOPs per image, with\n"
                 "containers summing what they hold.\n\n"
                 "  --masks FILE   apply a masks file (from `shrinkwrap prune`) to the model and\n"
                 "                 add two columns: the masked share of each module's weight, and\n"
                 "                 the output channels kept in the masked model (a pruned channel\n"
                 "                 is zero downstream: BatchNorm, activations and pools after a\n"
                 "                 pruned conv show it too)\n"
                 "  --compare OTHER  put a second model beside MODEL, module by module (matched\n"
                 "                 by name): output shape, parameters and FLOPs before -> after,\n"
                 "                 e.g. the dense model and its `shrinkwrap speedup` output;\n"
                 "                 modules only one of them has are marked\n");
}

/* The masks applied to the model, for the two extra columns (NULL members: no --masks). */
typedef struct info_masks {
    const sw_wrapper_set *ws;
    const sw_masks *masks;
} info_masks;

/* " sparsity  channels" cells of node `node` (blank for containers). */
static void mask_cells(const info_masks *im, int node, char *sparsity, char *channels,
                       size_t size) {
    snprintf(sparsity, size, "%s", "");
    snprintf(channels, size, "%s", "");
    if (node < 0) return;
    sw_cli_node_masks s;
    sw_cli_node_masks_of(im->ws, im->masks, node, &s);
    snprintf(sparsity, size, "%s", "-");
    snprintf(channels, size, "%s", "-");
    if (s.weight_sparsity >= 0) snprintf(sparsity, size, "%.1f%%", 100 * s.weight_sparsity);
    if (s.channels > 0) snprintf(channels, size, "%d/%d", s.channels_kept, s.channels);
}

static void print_tree(const sw_model *model, const sw_module_tree *tree, const info_masks *im) {
    char params[32], flops[32], shape[64], label[96], sparsity[32], channels[32];
    printf("%-36s %-18s %-16s %10s %10s", "module", "type", "output", "params", "FLOPs");
    if (im->masks) printf(" %9s %11s", "sparsity", "channels");
    printf("\n");
    for (int i = 0; i < tree->n; i++) {
        const sw_module_entry *e = &tree->entries[i];
        snprintf(label, sizeof label, "%*s%s", e->depth * 2, "", e->label);
        const char *type = "";
        shape[0] = '\0';
        if (e->node >= 0) {
            const sw_node *node = &model->nodes[e->node];
            type = sw_layer_kind_name(node->layer->kind);
            sw_shape_format(&node->out_shape, shape, sizeof shape);
        } else {
            type = "(container)";
        }
        printf("%-36s %-18s %-16s %10s %10s", label, type, shape,
               sw_cli_human((double)e->param_count, params, sizeof params),
               sw_cli_human(e->flops, flops, sizeof flops));
        if (im->masks) {
            mask_cells(im, e->node, sparsity, channels, sizeof sparsity);
            printf(" %9s %11s", sparsity, channels);
        }
        printf("\n");
    }
    char in_shape[64];
    printf("\n%s: input %s, %zu parameters (%s), %s FLOPs per image\n", model->arch,
           sw_shape_format(&model->input_shape, in_shape, sizeof in_shape),
           sw_model_param_count(model),
           sw_cli_human((double)sw_model_param_count(model), params, sizeof params),
           sw_cli_human(sw_model_flops(model), flops, sizeof flops));
}

/* "a -> b" of two human-readable counts, or "a" alone when they are equal. */
static const char *before_after(double a, double b, char *out, size_t size) {
    char x[32], y[32];
    sw_cli_human(a, x, sizeof x);
    if (a == b) return snprintf(out, size, "%s", x), out;
    snprintf(out, size, "%s -> %s", x, sw_cli_human(b, y, sizeof y));
    return out;
}

/* The module tree of `model` with `other`'s shape, params and FLOPs beside each module, matched
 * by full name; then the modules only `other` has, and the totals with their ratios. */
static sw_status print_comparison(const sw_model *model, const sw_module_tree *tree,
                                  const sw_model *other, const char *other_name) {
    sw_module_tree ot;
    SW_TRY(sw_module_tree_build(other, &ot));
    char label[96], shape[64], oshape[64], shapes[140], params[72], flops[72];
    printf("%-32s %-18s %-28s %-22s %s\n", "module", "type", "output", "params", "FLOPs");
    for (int i = 0; i < tree->n; i++) {
        const sw_module_entry *e = &tree->entries[i];
        const sw_module_entry *o = NULL;
        for (int j = 0; j < ot.n && !o; j++)
            if (strcmp(ot.entries[j].path, e->path) == 0) o = &ot.entries[j];
        snprintf(label, sizeof label, "%*s%s", e->depth * 2, "", e->label);
        const char *type = e->node >= 0 ? sw_layer_kind_name(model->nodes[e->node].layer->kind)
                                        : "(container)";
        shape[0] = oshape[0] = '\0';
        if (e->node >= 0) sw_shape_format(&model->nodes[e->node].out_shape, shape, sizeof shape);
        if (o && o->node >= 0) sw_shape_format(&other->nodes[o->node].out_shape, oshape, sizeof oshape);
        if (!o) {
            printf("%-32s %-18s %-28s %-22s %s\n", label, type, shape, "(not in OTHER)", "");
            continue;
        }
        if (strcmp(shape, oshape) == 0)
            snprintf(shapes, sizeof shapes, "%s", shape);
        else
            snprintf(shapes, sizeof shapes, "%s -> %s", shape, oshape);
        printf("%-32s %-18s %-28s %-22s %s\n", label, type, shapes,
               before_after((double)e->param_count, (double)o->param_count, params, sizeof params),
               before_after(e->flops, o->flops, flops, sizeof flops));
    }
    for (int j = 0; j < ot.n; j++) {
        bool found = false;
        for (int i = 0; i < tree->n && !found; i++)
            found = strcmp(tree->entries[i].path, ot.entries[j].path) == 0;
        if (!found) printf("%-32s only in %s\n", ot.entries[j].path, other_name);
    }
    double pa = (double)sw_model_param_count(model), pb = (double)sw_model_param_count(other);
    double fa = sw_model_flops(model), fb = sw_model_flops(other);
    printf("\nparameters %zu -> %zu (%.1f%%, %.2fx fewer)\n", sw_model_param_count(model),
           sw_model_param_count(other), pa > 0 ? 100 * pb / pa : 0.0, pb > 0 ? pa / pb : 0.0);
    printf("FLOPs      %s -> %s per image (%.1f%%, %.2fx fewer)\n",
           sw_cli_human(fa, params, sizeof params), sw_cli_human(fb, flops, sizeof flops),
           fa > 0 ? 100 * fb / fa : 0.0, fb > 0 ? fa / fb : 0.0);
    sw_module_tree_deinit(&ot);
    return SW_OK;
}

/* The share of masked elements over every parameter mask. */
static void print_masks_summary(const char *path, const sw_masks *m) {
    double zeros = 0, total = 0;
    for (int i = 0; i < m->n; i++) {
        if (sw_target_kind_of(m->items[i].target) != SW_TARGET_PARAM) continue;
        zeros += sw_mask_sparsity(&m->items[i].mask) * (double)m->items[i].mask.numel;
        total += (double)m->items[i].mask.numel;
    }
    printf("masks %s: %d tensors; %.0f of %.0f parameters under masks are masked (%.1f%%)\n", path,
           m->n, zeros, total, total > 0 ? 100 * zeros / total : 0.0);
}

int sw_cmd_info(int argc, char **argv) {
    const char *cmd = "info";
    const char *masks_path = NULL, *compare_path = NULL;
    static const struct option options[] = {
        {"help", no_argument, NULL, 'h'},
        {"masks", required_argument, NULL, 'm'},
        {"compare", required_argument, NULL, 'c'},
        {0, 0, 0, 0},
    };
    optind = 1;
    int id;
    while ((id = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        if (id == 'h') {
            print_help(stdout);
            return SW_EXIT_OK;
        }
        if (id == 'm') {
            masks_path = optarg;
            continue;
        }
        if (id == 'c') {
            compare_path = optarg;
            continue;
        }
        return sw_cli_usage_error(cmd, "unknown option");
    }
    if (optind != argc - 1) return sw_cli_usage_error(cmd, "expects exactly one MODEL");
    if (masks_path && compare_path)
        return sw_cli_usage_error(cmd, "--masks and --compare do not go together (speed the "
                                       "masks up first: `shrinkwrap speedup MODEL MASKS --out F`)");
    sw_model *model = NULL, *other = NULL;
    if (sw_cli_load_model(argv[optind], 0, &model) != SW_OK) return sw_cli_report(argv[optind]);
    if (compare_path && sw_cli_load_model(compare_path, 0, &other) != SW_OK) {
        sw_model_free(model);
        return sw_cli_report(compare_path);
    }
    int rc = SW_EXIT_FAIL;
    sw_masks masks;
    sw_masks_init(&masks);
    sw_wrapper_set *ws = NULL;
    sw_compressor *fixed = NULL;
    info_masks im = {0};
    sw_module_tree tree;
    bool tree_ready = false;
    if (masks_path) {
        /* Applied as a fixed-masks pruner: the wrapper set then knows the dead channels. */
        if (sw_masks_load(masks_path, &masks) != SW_OK) {
            rc = sw_cli_report(NULL);
            goto done;
        }
        if (sw_wrapper_set_new(model, &ws) != SW_OK ||
            sw_pruner_masks_new(ws, &masks, &fixed) != SW_OK) {
            rc = sw_cli_report(masks_path);
            goto done;
        }
        im = (info_masks){.ws = ws, .masks = &masks};
    }
    if (sw_module_tree_build(model, &tree) != SW_OK) {
        rc = sw_cli_report("module tree");
        goto done;
    }
    tree_ready = true;
    if (other) {
        if (print_comparison(model, &tree, other, compare_path) != SW_OK) {
            rc = sw_cli_report("module tree");
            goto done;
        }
        rc = SW_EXIT_OK;
        goto done;
    }
    print_tree(model, &tree, &im);
    if (masks_path) print_masks_summary(masks_path, &masks);
    rc = SW_EXIT_OK;
done:
    if (tree_ready) sw_module_tree_deinit(&tree);
    sw_compressor_free(fixed);
    sw_wrapper_set_release(ws);
    sw_masks_deinit(&masks);
    sw_model_free(other);
    sw_model_free(model);
    return rc;
}
