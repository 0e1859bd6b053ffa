-- wrk script: POSTs a dataset's queries in turn to /collections/$WRK_COLLECTION/points/query (default
-- `bench`), one JSON body per line of $WRK_BODIES (default bodies.txt; made by wrk_bodies.py).
--   wrk -t1 -c32 -d15s --latency -s benches/wrk-query.lua http://127.0.0.1:6333
local bodies = {}
local i = 0
local path = "/collections/" .. (os.getenv("WRK_COLLECTION") or "bench") .. "/points/query"
function init(args)
  for line in io.lines(os.getenv("WRK_BODIES") or "bodies.txt") do bodies[#bodies + 1] = line end
  i = math.random(#bodies)
end
function request()
  i = i % #bodies + 1
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, bodies[i])
end
