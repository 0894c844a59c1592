/* status.h: GetStatus and InstanceStatus bodies, built as JSON trees. */
#ifndef KPS_STATUS_H
#define KPS_STATUS_H

#include <cjson/cJSON.h>

#include "kps_plugin.h"

/* {"Pid", "Version", "Plugins": {...}, "Instances", "Events",
 *  "Connections", "Counters": {...}, "<plugin>": {plugin counters}} */
cJSON *kps__status_build(void);
/* {"Name", "Id", "Config", "StartTime", "Events", "ActiveEvents"} */
cJSON *kps__instance_status(const kps_instance_t *inst);

#endif
