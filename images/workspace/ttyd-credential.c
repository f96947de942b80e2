/*
 * LD_PRELOAD shim for ttyd: ttyd 1.7.7 takes its credential only as the argument of -c, and
 * /proc/<pid>/cmdline is readable by every user of the container. The entrypoint passes the
 * placeholder below instead; before ttyd's main() runs, this constructor points that argv entry at
 * a heap copy of $TTYD_CREDENTIAL, wipes the variable's bytes from the process's environment block
 * and unsets it together with LD_PRELOAD, so the terminal's shell inherits neither.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

static const char placeholder[] = "@TTYD_CREDENTIAL@";
static const char name[] = "TTYD_CREDENTIAL=";

__attribute__((constructor)) static void fill_credential(int argc, char **argv, char **envp)
{
	const char *value = getenv("TTYD_CREDENTIAL");
	/* Without the variable the placeholder becomes "", which ttyd rejects: no open terminal. */
	char *credential = strdup(value ? value : "");
	if (credential == NULL)
		abort();
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], placeholder) == 0)
			argv[i] = credential;
	for (char **entry = envp; entry != NULL && *entry != NULL; entry++)
		if (strncmp(*entry, name, sizeof(name) - 1) == 0)
			memset(*entry + sizeof(name) - 1, 0, strlen(*entry + sizeof(name) - 1));
	unsetenv("TTYD_CREDENTIAL");
	unsetenv("LD_PRELOAD");
}
