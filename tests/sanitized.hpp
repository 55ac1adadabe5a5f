// Whether this test binary (and so the programs it runs: the same build) has ThreadSanitizer,
// where code runs 5-15 times slower: a test may then skip runs that the other build of
// scripts/test.sh (g++ with AddressSanitizer) makes in full.
#pragma once

namespace test_support {
#if defined(__has_feature)
inline constexpr bool thread_sanitized = __has_feature(thread_sanitizer);
#elif defined(__SANITIZE_THREAD__)
inline constexpr bool thread_sanitized = true;
#else
inline constexpr bool thread_sanitized = false;
#endif
}  // namespace test_support
