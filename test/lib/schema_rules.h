/* schema_rules.h: checks a -dump output against Kong's schema rules
 * (metaschema.lua, dao/plugins.lua; proto/PROTOCOL.md R40-R46). */
#ifndef KPS_SCHEMA_RULES_H
#define KPS_SCHEMA_RULES_H

/* Aborts the test unless json is {"Protocol":"MsgPack:1","Plugins":[...]}
 * with expect_plugins entries, each valid under Kong's rules (3.4 and
 * later; check_dump_kong for an older Kong, as major * 100 + minor). */
void check_dump(const char *json, int expect_plugins);
void check_dump_kong(const char *json, int expect_plugins, unsigned kong_version);

#endif
