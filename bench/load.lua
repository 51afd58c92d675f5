-- wrk script for bench/load.py: a realistic mix of reads and writes, one JSON summary line.
--
-- LOAD_PLAN is a tab-separated file written by bench/load.py, one request template a line:
--   T <path>              timeline query (filters, full text, cursor pages)
--   E <path>              single event read
--   X <path>              export (CSV / ICS of a bounded range)
--   P <json body>         POST /v1/events body; @ID@ is replaced by a unique slug
--   U <event id> <ver>    an event this run may PATCH, with its current version
-- LOAD_MIX is "timeline=70,event=22,export=3,post=2,patch=3" (weights), LOAD_TOKEN the editor
-- key, LOAD_TAG makes POSTed ids unique per run, LOAD_THREADS is wrk's -t.
--
-- A PATCH needs If-Match. To never send a stale one (a 412 would be an error), each wrk thread
-- owns a disjoint share of the U events, never has two PATCHes of one event in flight, and takes
-- the new version from the ETag of the 200 answer. Single event reads use other events, so an
-- answer carrying an ETag and `{"id":"…"` of an owned, in-flight event is that event's PATCH.

local kinds = { "timeline", "event", "export", "post", "patch" }
local paths = { timeline = {}, event = {}, export = {} }
local posts, patchable = {}, {}

local file = os.getenv("LOAD_PLAN")
for line in io.lines(file) do
  local tag, rest = line:match("^(%a)\t(.*)$")
  if tag == "T" then
    table.insert(paths.timeline, rest)
  elseif tag == "E" then
    table.insert(paths.event, rest)
  elseif tag == "X" then
    table.insert(paths.export, rest)
  elseif tag == "P" then
    table.insert(posts, rest)
  elseif tag == "U" then
    local id, version = rest:match("^(%S+)\t(%d+)$")
    table.insert(patchable, { id = id, version = tonumber(version) })
  end
end

local weights, total = {}, 0
for name, value in (os.getenv("LOAD_MIX") or ""):gmatch("(%a+)=(%d+%.?%d*)") do
  weights[name] = tonumber(value)
end
for _, name in ipairs(kinds) do
  total = total + (weights[name] or 0)
end
local token = os.getenv("LOAD_TOKEN") or ""
local run_tag = os.getenv("LOAD_TAG") or "load"
local nthreads = tonumber(os.getenv("LOAD_THREADS") or "1")
-- With LOAD_DELAY_MS, each connection pauses a random (exponential) time of that mean before
-- each request, so the offered rate is about connections * 1000 / mean per second (--rate)
-- instead of as fast as the server answers.
local delay_ms = tonumber(os.getenv("LOAD_DELAY_MS") or "0")
if delay_ms > 0 then
  delay = function()
    return math.floor(-math.log(1 - math.random()) * delay_ms)
  end
end

-- main thread: remember every thread so done() can add up their tallies
local threads = {}
local counter = 0
setup = function(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

-- per thread (each has its own Lua state)
tid = 0
sent = {}        -- requests made, by kind
statuses = {}    -- answers, by status code
samples = {}     -- the first few error answers, for the report
local owned, inflight, cursor, serial = {}, {}, 0, 0

init = function(args)
  math.randomseed(os.time() + tid * 7919 + (tonumber(tostring({}):sub(8)) or 0))
  for i, item in ipairs(patchable) do
    if (i - 1) % nthreads == tid then
      table.insert(owned, item)
    end
  end
end

local function pick_kind()
  local r = math.random() * total
  for _, name in ipairs(kinds) do
    r = r - (weights[name] or 0)
    if r < 0 then return name end
  end
  return "timeline"
end

local function next_patch()
  for _ = 1, #owned do
    cursor = cursor % #owned + 1
    local item = owned[cursor]
    if not inflight[item.id] then return item end
  end
  return nil
end

request = function()
  local kind = pick_kind()
  if kind == "patch" then
    local item = #owned > 0 and next_patch() or nil
    if item then
      inflight[item.id] = item
      serial = serial + 1
      sent.patch = (sent.patch or 0) + 1
      local body = string.format(
        '{"summary":"Revised under load by bench.load (%s, thread %d, edit %d): the account'
          .. ' of this event was checked against its sources again."}', run_tag, tid, serial)
      return wrk.format("PATCH", "/v1/events/" .. item.id, {
        ["Authorization"] = "Bearer " .. token,
        ["Content-Type"] = "application/merge-patch+json",
        ["If-Match"] = '"' .. item.version .. '"',
      }, body)
    end
    kind = "timeline"
  end
  if kind == "post" and #posts > 0 then
    serial = serial + 1
    sent.post = (sent.post or 0) + 1
    local slug = string.format("%s-t%d-%d", run_tag, tid, serial)
    local body = posts[math.random(#posts)]:gsub("@ID@", slug)
    return wrk.format("POST", "/v1/events", {
      ["Authorization"] = "Bearer " .. token,
      ["Content-Type"] = "application/json",
    }, body)
  end
  local list = paths[kind]
  if list == nil or #list == 0 then
    kind, list = "timeline", paths.timeline
  end
  sent[kind] = (sent[kind] or 0) + 1
  return wrk.format("GET", list[math.random(#list)])
end

response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status >= 400 then
    if #samples < 8 then table.insert(samples, status .. " " .. body:sub(1, 300)) end
    return
  end
  if status == 200 and body:sub(1, 7) == '{"id":"' then
    local id = body:match('^{"id":"([^"]+)"')
    local item = id and inflight[id]
    local etag = headers["etag"] or headers["ETag"] or headers["Etag"]
    if item and etag then
      item.version = tonumber(etag:match("(%d+)")) or item.version
      inflight[id] = nil
    end
  end
end

local function encode(value)
  if type(value) == "table" then
    local parts, is_list = {}, #value > 0
    if is_list then
      for _, v in ipairs(value) do table.insert(parts, encode(v)) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    for k, v in pairs(value) do table.insert(parts, encode(tostring(k)) .. ":" .. encode(v)) end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif type(value) == "string" then
    return '"' .. value:gsub('[%c"\\]', function(c)
      return string.format("\\u%04x", c:byte())
    end) .. '"'
  end
  return tostring(value)
end

done = function(summary, latency, requests)
  local all_sent, all_statuses, all_samples = {}, {}, {}
  for _, thread in ipairs(threads) do
    for k, v in pairs(thread:get("sent") or {}) do all_sent[k] = (all_sent[k] or 0) + v end
    for k, v in pairs(thread:get("statuses") or {}) do
      all_statuses[tostring(k)] = (all_statuses[tostring(k)] or 0) + v
    end
    for _, s in ipairs(thread:get("samples") or {}) do table.insert(all_samples, s) end
  end
  local e = summary.errors
  local out = {
    requests = summary.requests,
    duration_us = summary.duration,
    bytes = summary.bytes,
    rps = summary.requests / (summary.duration / 1e6),
    p50_ms = latency:percentile(50) / 1000,
    p90_ms = latency:percentile(90) / 1000,
    p99_ms = latency:percentile(99) / 1000,
    p999_ms = latency:percentile(99.9) / 1000,
    max_ms = latency.max / 1000,
    mean_ms = latency.mean / 1000,
    err_connect = e.connect,
    err_read = e.read,
    err_write = e.write,
    err_status = e.status,
    err_timeout = e.timeout,
    sent = all_sent,
    statuses = all_statuses,
    error_samples = all_samples,
  }
  io.write("LOADJSON " .. encode(out) .. "\n")
end
