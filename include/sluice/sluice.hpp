// sluice: one operator DAG for batch and stream. The umbrella header for the core: time,
// monoids, operators and the flow. I/O and runners have their own headers below io/ and run/.
#pragma once

#if __cplusplus < 202002L
#error "sluice needs C++20 or later: compile with -std=c++20 (or meson cpp_std=c++20)"
#endif

#include "sluice/core/dedupe.hpp"
#include "sluice/core/distinct_count.hpp"
#include "sluice/core/filtered.hpp"
#include "sluice/core/hash.hpp"
#include "sluice/core/key.hpp"
#include "sluice/core/monoid.hpp"
#include "sluice/core/named.hpp"
#include "sluice/core/quantiles.hpp"
#include "sluice/core/time.hpp"
#include "sluice/core/top_k.hpp"
#include "sluice/core/window.hpp"
#include "sluice/ops/aggregate.hpp"
#include "sluice/ops/collect.hpp"
#include "sluice/ops/describe.hpp"
#include "sluice/ops/event_time.hpp"
#include "sluice/ops/fan_out.hpp"
#include "sluice/ops/filter.hpp"
#include "sluice/ops/flat_map.hpp"
#include "sluice/ops/flow.hpp"
#include "sluice/ops/join.hpp"
#include "sluice/ops/key_by.hpp"
#include "sluice/ops/keyed.hpp"
#include "sluice/ops/lookup_join.hpp"
#include "sluice/ops/map.hpp"
#include "sluice/ops/process.hpp"
#include "sluice/ops/reduce.hpp"
#include "sluice/ops/tagged.hpp"
#include "sluice/ops/window.hpp"
#include "sluice/store/result_store.hpp"
