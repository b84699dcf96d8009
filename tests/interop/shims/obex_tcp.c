/*
 * LD_PRELOAD shim that turns SyncEvolution's Bluetooth OBEX client into an
 * OBEX-over-TCP client, so it can reach an OBEX listener on the loopback.
 *
 * SyncEvolution (syncURL obex-bt://ADDR+CHANNEL) creates an RFCOMM socket,
 * binds and connects it, then runs OpenOBEX on the file descriptor, so the
 * OBEX framing does not care what the socket is.  Here:
 *   socket(AF_BLUETOOTH, ...)  -> a TCP socket
 *   bind(Bluetooth address)    -> nothing
 *   connect(RFCOMM address)    -> connect to $SE_OBEX_TCP_HOST:$SE_OBEX_TCP_PORT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define BLUETOOTH_FAMILY 31

typedef int (*socket_t)(int, int, int);
typedef int (*addr_call_t)(int, const struct sockaddr *, socklen_t);

int socket(int domain, int type, int protocol)
{
    static socket_t next;
    if (!next)
        next = (socket_t)dlsym(RTLD_NEXT, "socket");
    if (domain == BLUETOOTH_FAMILY)
        return next(AF_INET, SOCK_STREAM, 0);
    return next(domain, type, protocol);
}

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    static addr_call_t next;
    if (!next)
        next = (addr_call_t)dlsym(RTLD_NEXT, "bind");
    if (addr && addr->sa_family == BLUETOOTH_FAMILY)
        return 0;
    return next(fd, addr, len);
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    static addr_call_t next;
    if (!next)
        next = (addr_call_t)dlsym(RTLD_NEXT, "connect");
    if (addr && addr->sa_family == BLUETOOTH_FAMILY) {
        const char *host = getenv("SE_OBEX_TCP_HOST");
        const char *port = getenv("SE_OBEX_TCP_PORT");
        struct sockaddr_in target;
        memset(&target, 0, sizeof(target));
        target.sin_family = AF_INET;
        target.sin_port = htons((unsigned short)(port ? atoi(port) : 650));
        if (!host || inet_pton(AF_INET, host, &target.sin_addr) != 1)
            inet_pton(AF_INET, "127.0.0.1", &target.sin_addr);
        return next(fd, (const struct sockaddr *)&target, sizeof(target));
    }
    return next(fd, addr, len);
}
