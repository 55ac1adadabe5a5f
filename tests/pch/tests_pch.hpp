// The headers most test files include, precompiled once per test executable (meson cpp_pch):
// parsing them took 2-3 s of each test file's 8-30 s of compile time. Only what nearly every
// test needs: a header here that a test does not include still costs it nothing but the
// precompiled header's load.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <doctest/doctest.h>

#include "sluice/io/file_source.hpp"
#include "sluice/io/memory_source.hpp"
#include "sluice/run/batch.hpp"
#include "sluice/run/stream.hpp"
#include "sluice/sluice.hpp"
