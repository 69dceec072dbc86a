// SPDX-License-Identifier: MPL-2.0
// door_buffer: reply bytes held on the heap or in a mapping handed over by the kernel or a memfd.
#include <portunus/door.hpp>

#include <sys/mman.h>

#include <cstring>
#include <utility>

namespace portunus {

door_buffer::door_buffer(std::string_view bytes)
{
    if (bytes.empty()) return;
    data_ = new char[bytes.size()];
    std::memcpy(data_, bytes.data(), bytes.size());
    size_ = bytes.size();
}

door_buffer door_buffer::adopt_mapping(void* address, std::size_t size, std::size_t map_length) noexcept
{
    door_buffer b;
    b.data_ = static_cast<char*>(address);
    b.size_ = size;
    b.map_length_ = map_length;
    return b;
}

door_buffer door_buffer::adopt_heap(char* block, std::size_t offset, std::size_t size) noexcept
{
    door_buffer b;
    b.heap_ = block;
    b.data_ = block + offset;
    b.size_ = size;
    return b;
}

door_buffer::door_buffer(door_buffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)),
      map_length_(std::exchange(other.map_length_, 0)), heap_(std::exchange(other.heap_, nullptr))
{
}

door_buffer& door_buffer::operator=(door_buffer&& other) noexcept
{
    if (this != &other) {
        release();
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
        map_length_ = std::exchange(other.map_length_, 0);
        heap_ = std::exchange(other.heap_, nullptr);
    }
    return *this;
}

door_buffer::~door_buffer() { release(); }

void door_buffer::release() noexcept
{
    if (data_ == nullptr) return;
    if (map_length_ != 0)
        ::munmap(data_, map_length_);
    else
        delete[] (heap_ != nullptr ? heap_ : data_);
    data_ = nullptr;
    size_ = 0;
    map_length_ = 0;
    heap_ = nullptr;
}

} // namespace portunus
