/* cmd_info.c - `shrinkwrap info MODEL`: the module tree with types, output shapes, parameters
 * and FLOPs per node, and the totals. */
#include <string.h>

#include "cli/options.h"
#include "nn/module_tree.h"

static void print_help(FILE *out) {
    fprintf(out, "usage: shrinkwrap info MODEL\n\n"
                 "Shows the module tree of MODEL (a .safetensors model file or a zoo name): each\n"
                 "module's type, output shape, parameters and forward FLOPs per image, with\n"
                 "containers summing what they hold.\n");
}

static void print_tree(const sw_model *model, const sw_module_tree *tree) {
    char params[32], flops[32], shape[64], label[96];
    printf("%-36s %-18s %-16s %10s %10s\n", "module", "type", "output", "params", "FLOPs");
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
        printf("%-36s %-18s %-16s %10s %10s\n", label, type, shape,
               sw_cli_human((double)e->param_count, params, sizeof params),
               sw_cli_human(e->flops, flops, sizeof flops));
    }
    char in_shape[64];
    printf("\n%s: input %s, %zu parameters (%s), %s FLOPs per image\n", model->arch,
           sw_shape_format(&model->input_shape, in_shape, sizeof in_shape),
           sw_model_param_count(model),
           sw_cli_human((double)sw_model_param_count(model), params, sizeof params),
           sw_cli_human(sw_model_flops(model), flops, sizeof flops));
}

int sw_cmd_info(int argc, char **argv) {
    const char *cmd = "info";
    static const struct option options[] = {
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    optind = 1;
    int id;
    while ((id = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        if (id == 'h') {
            print_help(stdout);
            return SW_EXIT_OK;
        }
        return sw_cli_usage_error(cmd, "unknown option");
    }
    if (optind != argc - 1) return sw_cli_usage_error(cmd, "expects exactly one MODEL");
    sw_model *model = NULL;
    if (sw_cli_load_model(argv[optind], 0, &model) != SW_OK) return sw_cli_report(argv[optind]);
    sw_module_tree tree;
    if (sw_module_tree_build(model, &tree) != SW_OK) {
        sw_model_free(model);
        return sw_cli_report("module tree");
    }
    print_tree(model, &tree);
    sw_module_tree_deinit(&tree);
    sw_model_free(model);
    return SW_EXIT_OK;
}
