-- A stand-in for OpenResty's ngx.pipe.spawn(cmd, {merge_stderr = true}).
--
-- Debian's lua-nginx-module is built without the socket-cloexec patch, so
-- ngx.pipe refuses to load.  This does the same thing with LuaJIT's FFI:
-- fork, point the child's stdout+stderr at one pipe, close every inherited
-- descriptor (nginx's listening sockets must not leak into the server, which
-- is what the cloexec patch guarantees for ngx.pipe), restore default signal
-- dispositions, and exec `/bin/sh -c <cmd>` with the worker's environment.
-- The parent reads the pipe without blocking and reaps with waitpid().
--
-- nginx's own SIGCHLD handler reaps every child of a worker (logging "unknown
-- process ... exited"), so the worker that spawns sets SIGCHLD back to SIG_DFL
-- first; our children then stay zombies until proc:wait() collects them.

local ffi = require "ffi"
local C = ffi.C

ffi.cdef [[
  typedef int pid_t;
  typedef void (*kgw_sighandler_t)(int);
  pid_t fork(void);
  int pipe2(int pipefd[2], int flags);
  int dup2(int oldfd, int newfd);
  int close(int fd);
  int fcntl(int fd, int cmd, ...);
  int execve(const char *path, char *const argv[], char *const envp[]);
  void _exit(int status);
  long read(int fd, void *buf, size_t count);
  int kill(pid_t pid, int sig);
  pid_t waitpid(pid_t pid, int *status, int options);
  kgw_sighandler_t signal(int signum, kgw_sighandler_t handler);
  int close_range(unsigned int first, unsigned int last, int flags);
  int setpgid(pid_t pid, pid_t pgid);
  extern char **environ;
]]

local O_CLOEXEC = 0x80000      -- Linux x86_64 / arm64
local O_NONBLOCK = 0x800
local F_SETFL, F_GETFL = 4, 3
local WNOHANG = 1
local SIGCHLD = 17
local EAGAIN, EINTR, ECHILD = 11, 4, 10
local SIG_DFL = ffi.cast("kgw_sighandler_t", 0)

local _M = {}

local Proc = {}
Proc.__index = Proc

local sigchld_reset = false

local function reset_child_signals()
  for sig = 1, 31 do
    if sig ~= 9 and sig ~= 19 then
      C.signal(sig, SIG_DFL)
    end
  end
end

function _M.spawn(cmd)
  if not sigchld_reset then
    C.signal(SIGCHLD, SIG_DFL)
    sigchld_reset = true
  end

  local fds = ffi.new("int[2]")
  if C.pipe2(fds, O_CLOEXEC) ~= 0 then
    return nil, "pipe2() failed: errno " .. ffi.errno()
  end

  -- everything the child touches is prepared before fork()
  local sh = ffi.new("char[?]", 8, "/bin/sh")
  local a0 = ffi.new("char[?]", 3, "sh")
  local a1 = ffi.new("char[?]", 3, "-c")
  local a2 = ffi.new("char[?]", #cmd + 1, cmd)
  local argv = ffi.new("char *[4]", a0, a1, a2, nil)
  local rfd, wfd = fds[0], fds[1]

  local pid = C.fork()
  if pid < 0 then
    C.close(rfd)
    C.close(wfd)
    return nil, "fork() failed: errno " .. ffi.errno()
  end

  if pid == 0 then
    -- child: only plain system calls until execve()
    C.dup2(wfd, 1)
    C.dup2(wfd, 2)
    if C.close_range(3, 0xffffffff, 0) ~= 0 then
      for fd = 3, 65535 do C.close(fd) end
    end
    reset_child_signals()
    C.execve(sh, argv, C.environ)
    C._exit(127)
  end

  C.close(wfd)
  local flags = C.fcntl(rfd, F_GETFL)
  C.fcntl(rfd, F_SETFL, ffi.new("int", bit.bor(flags, O_NONBLOCK)))

  return setmetatable({
    _pid = pid, _fd = rfd, _buf = "", _eof = false, _status = nil,
    _rbuf = ffi.new("char[?]", 4096),
  }, Proc)
end

function Proc:pid()
  return self._pid
end

-- Reads what is available.  Returns a list of complete lines (without the
-- newline); at end of file the unterminated remainder is returned too.
function Proc:read_lines()
  local lines = {}
  while not self._eof do
    local n = tonumber(C.read(self._fd, self._rbuf, 4096))
    if n > 0 then
      self._buf = self._buf .. ffi.string(self._rbuf, n)
    elseif n == 0 then
      self._eof = true
      C.close(self._fd)
    else
      local e = ffi.errno()
      if e ~= EINTR then
        if e ~= EAGAIN then
          self._eof = true
          C.close(self._fd)
        end
        break
      end
    end
  end
  for line in self._buf:gmatch("([^\n]*)\n") do
    lines[#lines + 1] = line
  end
  self._buf = self._buf:match("[^\n]*$") or ""
  if self._eof and self._buf ~= "" then
    lines[#lines + 1] = self._buf
    self._buf = ""
  end
  return lines
end

function Proc:eof()
  return self._eof
end

-- Non-blocking reap.  Returns nil while running; otherwise
-- "exit", code  or  "signal", signo  (or "exited", nil if someone else reaped).
function Proc:wait()
  if self._status then
    return self._status[1], self._status[2]
  end
  local st = ffi.new("int[1]")
  local r = C.waitpid(self._pid, st, WNOHANG)
  if r == 0 then
    return nil
  end
  if r < 0 then
    if ffi.errno() == ECHILD then
      self._status = { "exited", nil }
      return "exited", nil
    end
    return nil
  end
  local s = st[0]
  if bit.band(s, 0x7f) == 0 then
    self._status = { "exit", bit.band(bit.rshift(s, 8), 0xff) }
  else
    self._status = { "signal", bit.band(s, 0x7f) }
  end
  return self._status[1], self._status[2]
end

function Proc:kill(sig)
  if self._status then
    return nil, "exited"
  end
  if C.kill(self._pid, sig) ~= 0 then
    return nil, "kill() failed: errno " .. ffi.errno()
  end
  return true
end

return _M
