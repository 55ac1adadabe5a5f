// The doctest main, alone in its translation unit so test files compile in parallel.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
