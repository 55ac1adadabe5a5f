// Operators and their composition into flows.
#include <doctest/doctest.h>

#include "sluice/sluice.hpp"
