#pragma once
#include <cstddef>

namespace longtail {

// Advises the kernel to back the 2 MiB-aligned part of [data, data + length) with transparent
// huge pages; returns the bytes advised (0: none, or not Linux). Call before the memory is touched.
size_t advise_huge_pages(void* data, size_t length);

}  // namespace longtail
