/* serialize_shapes.h: kong.log.serialize() text as real Kong sends it to a
 * plugin server, for the record tests.
 *
 * The text is what the "kong.log.serialize" override of
 * kong/runloop/plugin_servers (init.lua up to 3.8, plugin.lua in 3.9) sends:
 * cjson.encode of the table built by kong/pdk/log.lua's http `serialize`,
 * so "/" is escaped as "\/", empty plain tables come out as {} and tables
 * carrying cjson's array_mt (balancer_data.tries) as [].  Kong's key order
 * is a hash order; the shapes keep one such order.
 *
 * Per era (kong/pdk/log.lua at the tag named):
 *   3.4.2  no request.id, no "source", no latencies.receive, no workspace;
 *          upstream_status is var.upstream_status or "" (with buffered
 *          proxying the main request has none: "")
 *   3.9.3  request.id, "source" ("upstream" or "kong"), latencies.receive,
 *          workspace, workspace_name; upstream_status falls back to
 *          ctx.buffered_status, a number
 * In both, the router and balancer_prepare run in runloop's access.before
 * (kong/runloop/handler.lua) before any access plugin: upstream_uri is set
 * and ctx.balancer_data.tries is setmetatable({}, ARRAY_MT) even when a
 * plugin ends the request in access, and latencies.proxy is
 * KONG_WAITING_TIME or -1 (kong/init.lua header_filter/log).  Kong.balancer
 * adds one entry to tries per try; a failed try gets state "failed" and its
 * code (handler.lua, log phase).
 *
 * KEY(k) is the member tcp-body-log's response phase adds with
 * kong.log.set_serialize_value (edit_result puts it at the top level). */
#ifndef TEST_SERIALIZE_SHAPES_H
#define TEST_SERIALIZE_SHAPES_H

#include "exchange.h"

#define SHAPE_KEY(k) "\"" TBL_EXCHANGE_KEY "\":\"" k "\","

#define SHAPE_ROUTE                                                                          \
  "\"route\":{\"id\":\"7d8a2ba4-0c58-5d5b-9a5c-1ff2d8e27d6e\",\"paths\":[\"\\/echo\"],"           \
  "\"protocols\":[\"http\",\"https\"],\"strip_path\":true,\"created_at\":1795684800,"         \
  "\"ws_id\":\"3b6f3b3e-9a2f-5a47-8c73-dd6f1b2a4c11\",\"request_buffering\":true,"             \
  "\"updated_at\":1795684800,\"preserve_host\":false,\"regex_priority\":0,"                      \
  "\"response_buffering\":true,\"https_redirect_status_code\":426,\"path_handling\":\"v0\","  \
  "\"name\":\"echo\",\"service\":{\"id\":\"1c7a3d5e-6f04-5b2b-8e1a-4d9c0b7e2f33\"}}"
#define SHAPE_SERVICE                                                                        \
  "\"service\":{\"host\":\"127.0.0.1\",\"created_at\":1795684800,\"connect_timeout\":60000,"   \
  "\"id\":\"1c7a3d5e-6f04-5b2b-8e1a-4d9c0b7e2f33\",\"protocol\":\"http\",\"read_timeout\":60000," \
  "\"port\":8080,\"path\":\"\\/echo\",\"updated_at\":1795684800,\"write_timeout\":60000,"     \
  "\"retries\":5,\"ws_id\":\"3b6f3b3e-9a2f-5a47-8c73-dd6f1b2a4c11\",\"enabled\":true,"         \
  "\"name\":\"echo\"}"
#define SHAPE_TRY_OK                                                                         \
  "{\"balancer_start\":1795684822309,\"balancer_start_ns\":1.795684822309e+18,"              \
  "\"ip\":\"127.0.0.1\",\"port\":8080,\"balancer_latency\":0,\"balancer_latency_ns\":21504}"
#define SHAPE_TRY_FAILED                                                                     \
  "{\"balancer_start\":1795684822309,\"balancer_start_ns\":1.795684822309e+18,"              \
  "\"ip\":\"127.0.0.1\",\"port\":1,\"balancer_latency\":0,\"balancer_latency_ns\":18944,"     \
  "\"state\":\"failed\",\"code\":502}"
#define SHAPE_REQ_HEADERS                                                                    \
  "\"headers\":{\"host\":\"127.0.0.1:8000\",\"content-type\":\"application\\/json\","         \
  "\"authorization\":\"REDACTED\",\"cookie\":\"sid=secret\",\"content-length\":\"27\","      \
  "\"user-agent\":\"curl\\/7.88.1\",\"accept\":\"*\\/*\"}"
/* The same headers as tcp-body-log's default redact_headers leave them. */
#define SHAPE_REQ_HEADERS_REDACTED                                                           \
  "\"headers\":{\"host\":\"127.0.0.1:8000\",\"content-type\":\"application\\/json\","         \
  "\"authorization\":\"REDACTED\",\"cookie\":\"REDACTED\",\"content-length\":\"27\","        \
  "\"user-agent\":\"curl\\/7.88.1\",\"accept\":\"*\\/*\"}"
#define SHAPE_RESP_HEADERS                                                                   \
  "\"headers\":{\"content-type\":\"text\\/plain\",\"set-cookie\":[\"a=1\",\"b=2\"],"           \
  "\"content-length\":\"5\",\"via\":\"1.1 kong\\/3.x\",\"connection\":\"close\"}"
#define SHAPE_RESP_HEADERS_REDACTED                                                          \
  "\"headers\":{\"content-type\":\"text\\/plain\",\"set-cookie\":\"REDACTED\","              \
  "\"content-length\":\"5\",\"via\":\"1.1 kong\\/3.x\",\"connection\":\"close\"}"

/* ---- Kong 3.4.2 ---------------------------------------------------------- */

/* A proxied, buffered exchange (tcp-body-log declares `response`).  The
 * _X form takes the request and response headers and what follows them in
 * each object, so a test can state the exact record. */
#define SHAPE_34_X(key, req_headers, req_tail, resp_headers, resp_tail)                      \
  "{\"request\":{\"querystring\":{},\"size\":172,\"uri\":\"\\/echo\","                        \
  "\"url\":\"http:\\/\\/127.0.0.1:8000\\/echo\"," req_headers ",\"method\":\"POST\"" req_tail "}," \
  "\"client_ip\":\"127.0.0.1\",\"tries\":[" SHAPE_TRY_OK "],"                               \
  "\"latencies\":{\"request\":4,\"kong\":1,\"proxy\":2},\"upstream_uri\":\"\\/echo\","        \
  key "\"response\":{\"status\":200," resp_headers ",\"size\":212" resp_tail "},"             \
  SHAPE_ROUTE ",\"upstream_status\":\"\"," SHAPE_SERVICE ",\"started_at\":1795684822308}"
#define SHAPE_34_PROXIED(key) SHAPE_34_X(key, SHAPE_REQ_HEADERS, "", SHAPE_RESP_HEADERS, "")

/* Another plugin answered in access (kong.response.exit(403)): routed, so
 * upstream_uri is set and tries is [], but Kong never waited for the
 * service (proxy -1) and cleared buffered_proxying: no response phase, no
 * join key.  The shape this plugin once mistook for "proxied". */
#define SHAPE_34_SHORT_CIRCUITED                                                             \
  "{\"request\":{\"querystring\":{},\"size\":172,\"uri\":\"\\/echo\","                        \
  "\"url\":\"http:\\/\\/127.0.0.1:8000\\/echo\"," SHAPE_REQ_HEADERS ",\"method\":\"POST\"},"  \
  "\"client_ip\":\"127.0.0.1\",\"tries\":[],\"latencies\":{\"request\":1,\"kong\":1,"         \
  "\"proxy\":-1},\"upstream_uri\":\"\\/echo\",\"response\":{\"status\":403,"                 \
  "\"headers\":{\"content-type\":\"application\\/json; charset=utf-8\",\"content-length\":\"25\"},"  \
  "\"size\":190}," SHAPE_ROUTE ",\"upstream_status\":\"\"," SHAPE_SERVICE                     \
  ",\"started_at\":1795684822308}"

/* The service's port was closed: the balancer tried (tries holds the
 * failed try), Kong answered 502, the response phase never ran. */
#define SHAPE_34_UPSTREAM_DEAD                                                               \
  "{\"request\":{\"querystring\":{},\"size\":80,\"uri\":\"\\/dead\","                         \
  "\"url\":\"http:\\/\\/127.0.0.1:8000\\/dead\",\"headers\":{\"host\":\"127.0.0.1:8000\"},"    \
  "\"method\":\"GET\"},\"client_ip\":\"127.0.0.1\",\"tries\":[" SHAPE_TRY_FAILED "],"          \
  "\"latencies\":{\"request\":2,\"kong\":2,\"proxy\":-1},\"upstream_uri\":\"\\/dead\","       \
  "\"response\":{\"status\":502,\"headers\":{\"content-type\":\"application\\/json; charset=utf-8\"},"  \
  "\"size\":230}," SHAPE_ROUTE ",\"upstream_status\":\"\"," SHAPE_SERVICE                  \
  ",\"started_at\":1795684822308}"

/* ---- Kong 3.9.3 ---------------------------------------------------------- */

#define SHAPE_39_X(key, req_headers, req_tail, resp_headers, resp_tail)                      \
  "{\"request\":{\"id\":\"2372e68d29750cd9f9dbc3cc7ab421d0\",\"querystring\":{},\"size\":172," \
  "\"uri\":\"\\/echo\",\"url\":\"http:\\/\\/127.0.0.1:8000\\/echo\"," req_headers            \
  ",\"method\":\"POST\"" req_tail "},\"client_ip\":\"127.0.0.1\",\"tries\":[" SHAPE_TRY_OK "]," \
  "\"latencies\":{\"request\":4,\"kong\":1,\"proxy\":2,\"receive\":0},"                       \
  "\"upstream_uri\":\"\\/echo\"," key "\"response\":{\"status\":200," resp_headers            \
  ",\"size\":212" resp_tail "}," SHAPE_ROUTE ",\"upstream_status\":200," SHAPE_SERVICE         \
  ",\"source\":\"upstream\",\"workspace\":\"3b6f3b3e-9a2f-5a47-8c73-dd6f1b2a4c11\","            \
  "\"workspace_name\":\"default\",\"started_at\":1795684822308}"
#define SHAPE_39_PROXIED(key) SHAPE_39_X(key, SHAPE_REQ_HEADERS, "", SHAPE_RESP_HEADERS, "")

#define SHAPE_39_SHORT_CIRCUITED                                                             \
  "{\"request\":{\"id\":\"2372e68d29750cd9f9dbc3cc7ab421d1\",\"querystring\":{},\"size\":172," \
  "\"uri\":\"\\/echo\",\"url\":\"http:\\/\\/127.0.0.1:8000\\/echo\"," SHAPE_REQ_HEADERS      \
  ",\"method\":\"POST\"},\"client_ip\":\"127.0.0.1\",\"tries\":[],"                          \
  "\"latencies\":{\"request\":1,\"kong\":1,\"proxy\":-1,\"receive\":0},"                      \
  "\"upstream_uri\":\"\\/echo\",\"response\":{\"status\":403,"                                \
  "\"headers\":{\"content-type\":\"application\\/json; charset=utf-8\",\"content-length\":\"25\"},"  \
  "\"size\":190}," SHAPE_ROUTE ",\"upstream_status\":\"\"," SHAPE_SERVICE                     \
  ",\"source\":\"kong\",\"workspace\":\"3b6f3b3e-9a2f-5a47-8c73-dd6f1b2a4c11\","                \
  "\"workspace_name\":\"default\",\"started_at\":1795684822308}"

#define SHAPE_39_UPSTREAM_DEAD                                                               \
  "{\"request\":{\"id\":\"2372e68d29750cd9f9dbc3cc7ab421d2\",\"querystring\":{},\"size\":80,"  \
  "\"uri\":\"\\/dead\",\"url\":\"http:\\/\\/127.0.0.1:8000\\/dead\","                           \
  "\"headers\":{\"host\":\"127.0.0.1:8000\"},\"method\":\"GET\"},\"client_ip\":\"127.0.0.1\","  \
  "\"tries\":[" SHAPE_TRY_FAILED "],\"latencies\":{\"request\":2,\"kong\":2,\"proxy\":-1,"    \
  "\"receive\":0},\"upstream_uri\":\"\\/dead\",\"response\":{\"status\":502,"                 \
  "\"headers\":{\"content-type\":\"application\\/json; charset=utf-8\"},\"size\":230},"        \
  SHAPE_ROUTE ",\"upstream_status\":\"\"," SHAPE_SERVICE ",\"source\":\"kong\","           \
  "\"workspace\":\"3b6f3b3e-9a2f-5a47-8c73-dd6f1b2a4c11\",\"workspace_name\":\"default\","      \
  "\"started_at\":1795684822308}"

/* No route matched (a global plugin's log phase): the router never ran, so
 * no upstream_uri, no tries, route or service (kong/runloop/handler.lua
 * access.before answers 404 first). */
#define SHAPE_39_NO_ROUTE                                                                    \
  "{\"request\":{\"id\":\"2372e68d29750cd9f9dbc3cc7ab421d3\",\"querystring\":{},\"size\":80,"  \
  "\"uri\":\"\\/nowhere\",\"url\":\"http:\\/\\/127.0.0.1:8000\\/nowhere\","                     \
  "\"headers\":{\"host\":\"127.0.0.1:8000\"},\"method\":\"GET\"},\"client_ip\":\"127.0.0.1\","  \
  "\"latencies\":{\"request\":0,\"kong\":0,\"proxy\":-1,\"receive\":0},\"upstream_uri\":\"\","  \
  "\"response\":{\"status\":404,\"headers\":{\"content-type\":\"application\\/json; charset=utf-8\"}," \
  "\"size\":200},\"upstream_status\":\"\",\"source\":\"kong\",\"workspace_name\":\"default\","  \
  "\"started_at\":1795684822308}"

#endif
