/* rpc.h: every constant of the MsgPack:1 wire protocol, in one place.
 * Rule numbers (R1, R2, ...) refer to proto/PROTOCOL.md. */
#ifndef KPS_RPC_H
#define KPS_RPC_H

#define KPS_RPC_PROTOCOL "MsgPack:1"

/* R1: message types (first array element). */
#define KPS_RPC_REQUEST 0
#define KPS_RPC_RESPONSE 1
#define KPS_RPC_NOTIFY 2

/* R3: the only notification we send, right after accept. */
#define KPS_RPC_NOTIFY_SERVER_PID "serverPid"

/* R2: every method lives in this namespace. */
#define KPS_RPC_NAMESPACE "plugin."

/* R10: map keys Kong reads and writes. */
#define KPS_KEY_NAME "Name"
#define KPS_KEY_CONFIG "Config"
#define KPS_KEY_ID "Id"
#define KPS_KEY_START_TIME "StartTime"
#define KPS_KEY_INSTANCE_ID "InstanceId"
#define KPS_KEY_EVENT_NAME "EventName"
#define KPS_KEY_EVENT_ID "EventId"
#define KPS_KEY_DATA "Data"
#define KPS_KEY_METHOD "Method"
#define KPS_KEY_ARGS "Args"

/* R13: the Data value that ends an event. */
#define KPS_RPC_RET "ret"

/* R20: error strings Kong depends on.  Kong matches "no plugin instance"
 * case-insensitively and then restarts the instance. */
#define KPS_ERR_NO_INSTANCE "no plugin instance #%lld"
#define KPS_ERR_NO_EVENT "no running event #%lld"

#endif
