/*
 * image.h — the read-only image file: a packed file tree the guest runtime
 * reads in place (it is mapped at FB_IMAGE_BASE, user read-only).
 *
 * Written by src/image/pack.ts, read by native/guest/vfs (and tests). Layout:
 *   [header: 4 KiB] [entries: fb_img_entry[entry_count]] [names] [pad]
 *   [file data, each regular file's data starting on a 4 KiB boundary]
 * Entry 0 is the root directory "/". A directory's children are the
 * contiguous entries [first_child, first_child + child_count), sorted by name
 * (bytewise), so lookup is a binary search per path component. Symlink
 * targets are stored as data. All integers little-endian. The runtime must
 * treat every offset as untrusted and bounds-check it against image_size.
 */
#ifndef FORKBOX_IMAGE_H
#define FORKBOX_IMAGE_H

#include <stdint.h>

#define FB_IMG_MAGIC   0x31474d4958424b46ull /* "FKBXIMG1" */
#define FB_IMG_VERSION 1u

struct fb_img_header {
    uint64_t magic;          /* FB_IMG_MAGIC */
    uint32_t version;        /* FB_IMG_VERSION */
    uint32_t header_size;    /* 4096 */
    uint64_t image_size;     /* total bytes of the file */
    uint64_t entry_count;
    uint64_t entries_off;    /* offset of fb_img_entry[0] */
    uint64_t names_off;      /* offset of the names blob */
    uint64_t names_size;
    uint64_t data_off;       /* first data byte (4 KiB aligned) */
    uint64_t build_time;     /* seconds since epoch; mtime of every entry */
    uint8_t  digest[32];     /* sha256 of the whole file with this field zeroed */
};

#define FB_IMG_S_IFMT   0170000u
#define FB_IMG_S_IFDIR  0040000u
#define FB_IMG_S_IFREG  0100000u
#define FB_IMG_S_IFLNK  0120000u

struct fb_img_entry {
    uint32_t name_off;       /* into names blob; root has name "" */
    uint32_t name_len;
    uint32_t mode;           /* type | permission bits, as st_mode */
    uint32_t child_count;    /* directories */
    uint64_t first_child;    /* directories: index of first child entry */
    uint64_t data_off;       /* regular files, symlinks: absolute offset in the image */
    uint64_t size;           /* regular files, symlinks: bytes; directories: 0 */
    uint32_t parent;         /* index of the parent directory (root: 0) */
    uint32_t reserved;
};
_Static_assert(sizeof(struct fb_img_entry) == 48, "image entry is 48 bytes");

#endif /* FORKBOX_IMAGE_H */
