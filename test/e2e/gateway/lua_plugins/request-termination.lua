-- Bundled Lua plugin "request-termination": the subset of Kong's own plugin
-- (kong/plugins/request-termination) that examples/kong.yml uses, so that
-- file stays valid for real Kong: kong.response.exit(status_code,
-- {message = message}) in the access phase.  PRIORITY 2, as in Kong.

return {
  PRIORITY = 2,
  VERSION = "3.9.1",
  schema_fields = {
    { status_code = { type = "integer", default = 503, between = { 100, 599 } } },
    { message = { type = "string" } },
  },

  access = function(self, conf)
    return kong.response.exit(conf.status_code, { message = conf.message or "Service unavailable" })
  end,
}
