-- Bundled Lua plugin "deny": ends every request in the access phase with
-- kong.response.exit(status, {message = ...}).  High priority, so it runs
-- before plugin-server plugins (the "another plugin exits early" case).
--
-- Lua plugin format used by gateway/plugins.lua: a handler table with
-- PRIORITY, VERSION, schema_fields (config fields, Kong schema syntax) and
-- one function per phase (rewrite, access, response, log), called as
-- handler:phase(conf).

return {
  PRIORITY = 1000000,
  VERSION = "0.1.0",
  schema_fields = {
    { status = { type = "integer", default = 403, between = { 100, 599 } } },
    { message = { type = "string", default = "denied by the deny plugin" } },
  },

  access = function(self, conf)
    return kong.response.exit(conf.status, { message = conf.message })
  end,
}
