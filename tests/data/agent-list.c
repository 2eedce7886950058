/* Asks the SSH agent at $SSH_AUTH_SOCK for its identities (SSH_AGENTC_REQUEST_IDENTITIES)
 * and prints how many it has: a real agent round trip from inside a RUN step of a busybox
 * image, which has no ssh client. Built static by tests/sandbox_cli.rs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int read_all(int fd, unsigned char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

int main(void) {
    const char *path = getenv("SSH_AUTH_SOCK");
    if (!path) { puts("no SSH_AUTH_SOCK"); return 2; }
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); return 3; }
    unsigned char req[5] = {0, 0, 0, 1, 11};
    if (write(fd, req, 5) != 5) { perror("write"); return 4; }
    unsigned char head[5];
    if (read_all(fd, head, 5) != 0 || head[4] != 12) { puts("bad answer"); return 5; }
    unsigned char count[4];
    if (read_all(fd, count, 4) != 0) { puts("short answer"); return 6; }
    printf("identities: %u\n", (count[0] << 24) | (count[1] << 16) | (count[2] << 8) | count[3]);
    return 0;
}
