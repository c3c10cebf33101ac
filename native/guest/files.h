/*
 * files.h — the runtime-served file requests (files.c): the request server
 * the control device calls, the per-exec change log and the overlay quota
 * that vfs.c and the write path feed. Wire format: native/include/abi.h.
 */
#ifndef FB_FILES_H
#define FB_FILES_H

#include "rt.h"

/* overlay bytes (sum of file sizes held by overlay nodes) and the quota on them */
extern u64 g_ovl_used, g_ovl_quota;
int ovl_quota_ok(u64 more);
/* a program or file request is about to change the bytes of overlay node o */
void ovl_touch(struct onode *o);

/* change log: called before `path` changes; existed/mode/size describe it now */
void chg_note(const char *path, int existed, u32 mode, u64 size);
void chg_reset(void);

/* Serves one runtime request (kind in FB_REQ_RT_FIRST..FB_REQ_RT_LAST): reads
 * req[0..req_len), fills *resp, writes at most out_cap bytes to out. Never fails
 * as a whole: errors are resp->err. */
void files_serve(u32 kind, const u8 *req, u64 req_len, struct fb_file_resp *resp, u8 *out, u64 out_cap, u64 *out_len);

#endif
