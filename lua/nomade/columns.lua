-- nomade.columns: the columns of a candle, in their order (CSV files,
-- Bybit's kline rows, the series a backtest and a run keep). The C side
-- has the same list in lib_candles.c, lib_paper.c and lib_shield.c.
-- Plain Lua, requiring nothing (scripts/layers: base).
return { "time", "open", "high", "low", "close", "volume" }
