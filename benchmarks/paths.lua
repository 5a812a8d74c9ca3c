-- wrk script: pick every request's path from PREFIX1 .. PREFIX<N>; with "count", also count
-- x-isr-cache values and statuses like count_cache.lua (which it loads).
--   wrk ... -s paths.lua http://host:port/ -- MODE N PREFIX [count]
-- MODE: "one" (always PREFIX1), "uniform" (each of the N equally likely) or "zipf"
-- (Zipf with s = 1: path k with probability (1/k) / H_N). Every mode draws one random
-- number and looks it up in a cumulative table of N entries, so that wrk does the same work
-- per request whatever the mode ("one" has N entries too, each PREFIX1's request); the
-- requests are formatted once, at start.
-- Counting is for short check runs, not measured ones: wrk hands every response's body to
-- response() as a Lua string, and LuaJIT interns each one. One page's body is the same
-- string every time; uniform bodies are all new, which cost wrk about 13 us more per
-- request than one page's (28 against 13 us over 100,000 pages), taken from the server's
-- share of the two cores.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "count_cache.lua")

local count_setup, count_init, count_response = setup, init, response
response = nil  -- wrk asks for responses only if init() defines it
local next_thread = 0

function setup(thread)
  count_setup(thread)
  next_thread = next_thread + 1
  thread:set("seed", 7919 * next_thread)  -- every thread its own random sequence
end

local requests, cdf

function init(args)
  count_init(args)
  local mode, n, prefix = args[1], tonumber(args[2]), args[3]
  if args[4] == "count" then
    response = count_response
  elseif args[4] ~= nil then
    error("paths.lua: the fourth argument can only be count, not " .. tostring(args[4]))
  end
  if mode ~= "one" and mode ~= "uniform" and mode ~= "zipf" then
    error("paths.lua: MODE must be one, uniform or zipf, not " .. tostring(mode))
  end
  math.randomseed(seed)
  requests, cdf = {}, {}
  local total = 0
  for k = 1, n do
    requests[k] = wrk.format(nil, prefix .. (mode == "one" and 1 or k))
    total = total + (mode == "zipf" and 1 / k or 1)
    cdf[k] = total
  end
  for k = 1, n do
    cdf[k] = cdf[k] / total
  end
  cdf[n] = 1
end

function request()
  local u = math.random()
  local low, high = 1, #cdf
  while low < high do  -- the first k with cdf[k] >= u
    local mid = math.floor((low + high) / 2)
    if cdf[mid] < u then low = mid + 1 else high = mid end
  end
  return requests[low]
end
