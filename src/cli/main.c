/* main.c - the shrinkwrap binary: everything is in the library; this only dispatches. */
#include "cli/cli.h"

int main(int argc, char **argv) { return sw_cli_main(argc, argv); }
