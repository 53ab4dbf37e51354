/* crisp-pause (built by the Makefile with `cc -static`, not by SwiftPM, whose links always pull in
 * the Swift runtime): the infra process of a pod. It holds the pod's namespaces, reaps zombies when it
 * is PID 1 of a shared PID namespace, and exits on SIGINT/SIGTERM. Linked statically so that it
 * runs from a root filesystem that holds nothing else. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig) { _exit(128 + sig); }

static void on_child(int sig) {
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        puts("crisp-pause 0.1.0");
        return 0;
    }
    struct sigaction term = {.sa_handler = on_term};
    sigemptyset(&term.sa_mask);
    sigaction(SIGINT, &term, NULL);
    sigaction(SIGTERM, &term, NULL);
    struct sigaction child = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP | SA_RESTART};
    sigemptyset(&child.sa_mask);
    sigaction(SIGCHLD, &child, NULL);
    for (;;) pause();
    return 1;
}
