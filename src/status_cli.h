/* status_cli.h: the `--status` client.  Returns the process exit code. */
#ifndef KPS_STATUS_CLI_H
#define KPS_STATUS_CLI_H

int kps__status_cli(const char *socket_path);

#endif
