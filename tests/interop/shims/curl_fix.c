/*
 * LD_PRELOAD shim for Debian's SyncEvolution 2.0.0 command line client.
 *
 * Its CurlTransportAgent hands C++ lambdas to the variadic curl_easy_setopt()
 * for CURLOPT_READFUNCTION and CURLOPT_WRITEFUNCTION; libcurl receives no
 * usable function pointer, falls back to fread()/fwrite() on the agent object
 * and the client crashes on its first HTTP message.
 *
 * This wrapper replaces those two options with plain C callbacks that call the
 * agent's exported member functions readData()/writeData(); every other
 * option is passed through unchanged.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

enum { OPT_WRITEFUNCTION = 20011, OPT_READFUNCTION = 20012 };

typedef size_t (*agent_io)(void *agent, void *buffer, size_t length);
typedef int (*setopt_t)(void *handle, int option, ...);

static agent_io agent_read, agent_write;

static void find_members(void)
{
    if (agent_read && agent_write)
        return;
    agent_read = (agent_io)dlsym(RTLD_DEFAULT, "_ZN7SyncEvo18CurlTransportAgent8readDataEPvm");
    agent_write = (agent_io)dlsym(RTLD_DEFAULT, "_ZN7SyncEvo18CurlTransportAgent9writeDataEPvm");
    if (!agent_read || !agent_write) {
        fputs("curl_fix: CurlTransportAgent members not found\n", stderr);
        abort();
    }
}

static size_t on_read(char *buffer, size_t size, size_t count, void *agent)
{
    return agent_read(agent, buffer, size * count);
}

static size_t on_write(char *buffer, size_t size, size_t count, void *agent)
{
    return agent_write(agent, buffer, size * count);
}

int curl_easy_setopt(void *handle, int option, ...)
{
    static setopt_t next;
    va_list args;
    void *value;

    if (!next)
        next = (setopt_t)dlsym(RTLD_NEXT, "curl_easy_setopt");
    /* On LP64 every option value (long, pointer, curl_off_t) is one register. */
    va_start(args, option);
    value = va_arg(args, void *);
    va_end(args);
    if (option == OPT_READFUNCTION) {
        find_members();
        value = (void *)on_read;
    } else if (option == OPT_WRITEFUNCTION) {
        find_members();
        value = (void *)on_write;
    }
    return next(handle, option, value);
}
