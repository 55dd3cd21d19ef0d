/* cli.c - subcommand dispatch and top-level help. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include "tensor/blas.h"

typedef struct sw_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} sw_command;

static const sw_command commands[] = {
    {"train", sw_cmd_train, "train a model on Fashion-MNIST (or MNIST, CIFAR-10)"},
    {"eval", sw_cmd_eval, "test accuracy of a model file"},
    {"info", sw_cmd_info, "module tree with types, shapes, parameters and FLOPs"},
    {"bench", sw_cmd_bench, "training throughput and inference latency"},
    {"tui", sw_cmd_tui, "the workbench: explore, train and compress in a terminal UI"},
    {"run", sw_cmd_run, "run a Lua recipe (recipes/*.lua; docs/LUA.md)"},
    {"speedup", sw_cmd_speedup, "shrink a pruned model for real: masks in, smaller model out"},
    {"fuse", sw_cmd_fuse, "prune with a fused distiller (or fine-tune), export the masks"},
    {"prune", sw_cmd_prune, "prune with any of the nine pruners, fine-tune, export the masks"},
    {"quantize", sw_cmd_quantize, "quantize (QAT, PTQ, LSQ, ...) and write a real int8 model"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void print_help(FILE *out) {
    fprintf(out,
            "shrinkwrap %s - a workbench for compressing neural networks\n\n"
            "usage: shrinkwrap COMMAND [OPTIONS]\n\ncommands:\n",
            SW_VERSION);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\nRun `shrinkwrap COMMAND --help` for a command's options.\n"
            "Models are zoo names (fmnist_mlp, fmnist_cnn, fmnist_resnet) or .safetensors files.\n"
            "The default data is Fashion-MNIST from %s\n"
            "(Debian package dataset-fashion-mnist).\n",
            SW_FASHION_MNIST_DEFAULT_DIR);
}

int sw_cli_main(int argc, char **argv) {
    if (argc < 2) {
        print_help(stderr);
        return SW_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        print_help(stdout);
        return SW_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("shrinkwrap %s\n%s\n", SW_VERSION, sw_blas_info());
        return SW_EXIT_OK;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, cmd) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "shrinkwrap: unknown command \"%s\"\n\n", cmd);
    print_help(stderr);
    return SW_EXIT_USAGE;
}
