// CSV parsing, schema binding and bad records.
#include <doctest/doctest.h>

#include "sluice/io/csv.hpp"
