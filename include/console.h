/* console.h: the serial command shell. One line at a time, echoed, with
 * backspace; a line is run when CR or LF arrives. Subsystems register
 * tables of commands; a command named "info mem" is matched word by word,
 * longest name first. */
#ifndef FERRY_CONSOLE_H
#define FERRY_CONSOLE_H

#include <stddef.h>

#define CONSOLE_LINE_MAX 256 /* bytes of a command line, NUL included */
#define CONSOLE_ARGS_MAX 16  /* words of a command line */
#define CONSOLE_PROMPT "(ferry) "

/* A command's function gets the words after the command's name (argv[0]
 * is the first argument, not the name). It prints its own output and
 * errors and returns 0 on success, non-zero on failure. */
typedef int (*console_cmd_fn)(int argc, char **argv);

struct console_cmd {
	const char *name; /* one or more words: "info mem" */
	const char *args; /* usage of the arguments, "" for none */
	const char *help; /* one line */
	console_cmd_fn fn;
};

/* Add a table of n commands (kept by reference: pass static storage).
 * Panics past the table limit (a kernel bug). */
void console_register(const struct console_cmd *cmds, size_t n);

/* Print the prompt. Call once, when ferry is ready for commands. */
void console_start(void);

/* Take every byte waiting on the serial line; run each complete line.
 * Returns non-zero if it did any work. Called by the main loop. */
int console_poll(void);

/* Send every byte typed on the console to fn instead of the command line
 * (the guest console), until fn returns non-zero; then the prompt comes
 * back. NULL ends a diversion at once. */
void console_divert(int (*fn)(int c));

/* Run one command line (no prompt). Returns the command's status, or -1
 * for an empty, unknown or malformed line (after printing why). */
int console_run(char *line);

/* stdout's bytes go to the serial line, or while a sink is set (JSON
 * mode) to it. NULL: the serial line again. */
void console_set_sink(void (*fn)(const char *s, size_t n));
void console_write(const char *s, size_t n);

/* The machine interface (kernel/qmp_cmds.c): registers `mode json`. */
void qmp_init(void);
/* In JSON mode, the events of what changed since the last call. Returns
 * non-zero when it sent any. Called by the main loop. */
int qmp_poll(void);

#endif
