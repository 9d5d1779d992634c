/* console.c: line editing and command dispatch for the serial console. */
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "console.h"
#include "serial.h"
#include "trap.h"

#define CONSOLE_TABLES_MAX 16

static const struct console_cmd *tables[CONSOLE_TABLES_MAX];
static size_t table_len[CONSOLE_TABLES_MAX];
static size_t ntables;

static char line[CONSOLE_LINE_MAX];
static size_t len;
static int overflow;   /* the current line outgrew the buffer: reject it */
static int esc_state;  /* 0 none, 1 after ESC, 2 inside "ESC [" */
static char last_eol;  /* CR then LF counts as one end of line */
static int (*divert)(int c); /* bytes go here instead (console_divert) */

void console_register(const struct console_cmd *cmds, size_t n)
{
	if (ntables == CONSOLE_TABLES_MAX)
		panic("console: more than %d command tables", CONSOLE_TABLES_MAX);
	tables[ntables] = cmds;
	table_len[ntables++] = n;
}

/* Split s in place on blanks. Returns the word count, or -1 if too many. */
static int split_words(char *s, char **w, int max)
{
	int n = 0;
	for (char *p = s; *p;) {
		while (*p == ' ' || *p == '\t')
			*p++ = 0;
		if (!*p)
			break;
		if (n == max)
			return -1;
		w[n++] = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
	}
	return n;
}

/* How many words of a command's name match the start of argv: the
 * name's word count when the whole name matches, else 0. With `prefix`,
 * argv may instead be a shorter prefix of the name's words ("info" matches
 * "info mem"); then the count of argv words is returned. */
static int name_match(const char *name, int argc, char **argv, int prefix)
{
	int k = 0;
	const char *p = name;
	while (*p) {
		if (k == argc)
			return prefix ? k : 0;
		size_t wl = strcspn(p, " ");
		if (strlen(argv[k]) != wl || strncmp(argv[k], p, wl) != 0)
			return 0;
		k++;
		p += wl;
		p += strspn(p, " ");
	}
	return k;
}

static void print_cmd(const struct console_cmd *c)
{
	char left[48];
	snprintf(left, sizeof(left), "%s%s%s", c->name, c->args[0] ? " " : "", c->args);
	printf("  %-36s %s\n", left, c->help);
}

static int cmd_help(int argc, char **argv)
{
	int shown = 0;
	for (size_t t = 0; t < ntables; t++)
		for (size_t i = 0; i < table_len[t]; i++)
			if (argc == 0 || name_match(tables[t][i].name, argc, argv, 1)) {
				print_cmd(&tables[t][i]);
				shown++;
			}
	if (!shown) {
		printf("error: no command starts with '%s'; try 'help'\n", argv[0]);
		return 1;
	}
	return 0;
}

static const struct console_cmd console_cmds[] = {
	{ "help", "[COMMAND]", "list commands, or those starting with COMMAND", cmd_help },
};

int console_run(char *s)
{
	char *argv[CONSOLE_ARGS_MAX];
	char orig[CONSOLE_LINE_MAX];
	snprintf(orig, sizeof(orig), "%s", s);
	int argc = split_words(s, argv, CONSOLE_ARGS_MAX);
	if (argc < 0) {
		printf("error: too many words (max %d)\n", CONSOLE_ARGS_MAX);
		return -1;
	}
	if (argc == 0)
		return -1;
	const struct console_cmd *best = NULL;
	int best_k = 0;
	int k = name_match(console_cmds[0].name, argc, argv, 0);
	if (k) {
		best = &console_cmds[0];
		best_k = k;
	}
	for (size_t t = 0; t < ntables; t++)
		for (size_t i = 0; i < table_len[t]; i++) {
			k = name_match(tables[t][i].name, argc, argv, 0);
			if (k > best_k) {
				best = &tables[t][i];
				best_k = k;
			}
		}
	if (!best) {
		/* Quote what was typed, blanks folded. */
		char *q = orig + strspn(orig, " \t");
		size_t n = strlen(q);
		while (n && (q[n - 1] == ' ' || q[n - 1] == '\t'))
			q[--n] = 0;
		printf("unknown command '%s'; try 'help'\n", q);
		return -1;
	}
	return best->fn(argc - best_k, argv + best_k);
}

static void (*out_sink)(const char *s, size_t n);

void console_set_sink(void (*fn)(const char *s, size_t n))
{
	out_sink = fn;
}

void console_write(const char *s, size_t n)
{
	if (out_sink)
		out_sink(s, n);
	else
		serial_write(s, n);
}

void console_divert(int (*fn)(int c))
{
	divert = fn;
}

void console_start(void)
{
	printf("%s", CONSOLE_PROMPT);
	fflush(stdout);
}

static void end_of_line(void)
{
	printf("\n");
	if (overflow) {
		printf("error: line too long (max %d characters); ignored\n", CONSOLE_LINE_MAX - 1);
	} else {
		line[len] = 0;
		console_run(line);
	}
	len = 0;
	overflow = 0;
	if (!divert) /* a command that diverted the console prompts when it ends */
		console_start();
}

/* How often the UART is read: each read is a port access, which an
 * emulator serves under its global lock, and the main loop spins fast
 * while the network is busy. The 16550's 16-byte FIFO holds 1.4 ms of
 * input at 115200 baud. */
#define CONSOLE_POLL_NS 250000

int console_poll(void)
{
	static uint64_t next_poll;
	uint64_t now = clock_ns();
	if (now < next_poll && !serial_rx_pending())
		return 0; /* the UART's own poll is throttled; what its interrupt took is not */
	next_poll = now + CONSOLE_POLL_NS;
	int did = 0, c;
	while ((c = serial_getc()) >= 0) {
		did = 1;
		if (divert) {
			if (divert(c)) {
				divert = NULL;
				len = 0;
				overflow = 0;
				console_start();
			}
			continue;
		}
		if (esc_state == 1) { /* ESC: swallow "[" sequences (arrow keys) */
			esc_state = c == '[' ? 2 : 0;
			continue;
		}
		if (esc_state == 2) {
			if (c >= 0x40 && c <= 0x7e)
				esc_state = 0;
			continue;
		}
		if (c == '\r' || c == '\n') {
			char prev = last_eol;
			last_eol = (char)c;
			if (prev == '\r' && c == '\n' && len == 0 && !overflow)
				continue; /* the LF of a CR LF pair */
			end_of_line();
			continue;
		}
		last_eol = 0;
		if (c == 0x1b) {
			esc_state = 1;
		} else if (c == 0x08 || c == 0x7f) {
			if (len > 0 && !overflow) {
				len--;
				serial_write("\b \b", 3);
			}
		} else if (c == 0x03) { /* ^C: drop the line */
			serial_write("^C", 2);
			len = 0;
			overflow = 0;
			end_of_line();
		} else if (c >= 0x20 && c < 0x7f) {
			if (len + 1 >= CONSOLE_LINE_MAX) {
				overflow = 1;
			} else if (!overflow) {
				line[len++] = (char)c;
				char ch = (char)c;
				serial_write(&ch, 1);
			}
		}
	}
	return did;
}
