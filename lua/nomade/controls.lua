-- nomade.controls: the controls an operator has over a run, whatever
-- channel brings them (the dashboard, Firebase's /commands), and how one
-- is carried out. Plain Lua, requiring nothing (scripts/layers: base).
local M = {}

M.ACTIONS = { pause = true, resume = true, halt = true, unhalt = true }

-- a control carried out: on_command(action, source) -> its result text
-- (a failure "error: ...", a refusal, nil and why, "refused: why")
function M.carry_out(on_command, action, source)
  local ok, result, why = pcall(on_command, action, source)
  if not ok then return "error: " .. tostring(result) end
  if result == nil then return "refused: " .. tostring(why) end
  return tostring(result)
end

return M
