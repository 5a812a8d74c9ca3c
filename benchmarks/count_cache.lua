-- wrk script: count the x-isr-cache header values (and statuses) of all responses.
-- done() prints one "ISR_COUNT <kind> <value> <n>" line per value for hit_path.py to parse;
-- responses without the header count as "-".
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  cache_counts = {}
  status_counts = {}
end

local function cache_value(headers)
  local v = headers["x-isr-cache"] or headers["X-Isr-Cache"] or headers["X-ISR-Cache"]
  if v then return v end
  for name, value in pairs(headers) do
    if string.lower(name) == "x-isr-cache" then return value end
  end
  return "-"
end

function response(status, headers, body)
  local v = cache_value(headers)
  cache_counts[v] = (cache_counts[v] or 0) + 1
  local s = tostring(status)
  status_counts[s] = (status_counts[s] or 0) + 1
end

function done(summary, latency, requests)
  local totals = {cache = {}, status = {}}
  for _, thread in ipairs(threads) do
    for kind, name in pairs({cache = "cache_counts", status = "status_counts"}) do
      for value, n in pairs(thread:get(name) or {}) do
        totals[kind][value] = (totals[kind][value] or 0) + n
      end
    end
  end
  for kind, counts in pairs(totals) do
    for value, n in pairs(counts) do
      io.write(string.format("ISR_COUNT %s %s %d\n", kind, value, n))
    end
  end
end
