# guest/rules.mk — the guest runtime (native/out/runtime.elf), the host
# harness (native/out/fb-host, a plain Linux process mapping the guest
# layout), the host unit tests and the harness tests.
GUEST_SRC := $(wildcard guest/*.c) guest/entry.S
GUEST_HDR := $(wildcard guest/*.h) include/abi.h include/image.h

guests:: $(OUT)/runtime.elf $(OUT)/fb-host

$(OUT)/runtime.elf: $(GUEST_SRC) $(GUEST_HDR) guest/runtime.ld
	@mkdir -p $(OUT)
	$(CC) $(GUEST_CFLAGS) -Iguest -T guest/runtime.ld -Wl,--build-id=none -o $@ $(GUEST_SRC)

# the harness maps guest RAM at address 0 and the image at 2 GiB: no ASan
# (its shadow lives there); PIE so the host binary stays out of the arena.
$(OUT)/fb-host: guest/host/fb-host.c $(GUEST_HDR)
	@mkdir -p $(OUT)
	$(CC) -std=gnu11 -O1 -g -Wall -Wextra -Werror -Iinclude -fPIE -pie -fno-stack-protector -o $@ guest/host/fb-host.c

$(OUT)/guest-unit: guest/host/unit.c guest/random.c guest/vfs.c guest/files.c $(GUEST_HDR)
	@mkdir -p $(OUT)
	$(CC) -std=gnu11 -O1 -g -Wall -Wextra -Werror -Wno-unused-parameter -Iinclude -Iguest -fno-builtin \
	    -fsanitize=address,undefined -fno-omit-frame-pointer -o $@ guest/host/unit.c

$(OUT)/guest-unit-mm: guest/host/unit-mm.c guest/mm.c $(GUEST_HDR)
	@mkdir -p $(OUT)
	$(CC) -std=gnu11 -O1 -g -Wall -Wextra -Werror -Wno-unused-parameter -Iinclude -Iguest -fno-builtin \
	    -fsanitize=address,undefined -fno-omit-frame-pointer -o $@ guest/host/unit-mm.c

$(OUT)/guest-unit-ipc: guest/host/unit-ipc.c guest/fd.c guest/ipc.c guest/hostfd.c guest/eventfd.c guest/sched.c $(GUEST_HDR)
	@mkdir -p $(OUT)
	$(CC) -std=gnu11 -O1 -g -Wall -Wextra -Werror -Wno-unused-parameter -Iinclude -Iguest -fno-builtin \
	    -fsanitize=address,undefined -fno-omit-frame-pointer -o $@ guest/host/unit-ipc.c

$(OUT)/guest-unit-shm: guest/host/unit-shm.c guest/mm.c guest/shmap.c guest/futex.c $(GUEST_HDR)
	@mkdir -p $(OUT)
	$(CC) -std=gnu11 -O1 -g -Wall -Wextra -Werror -Wno-unused-parameter -Iinclude -Iguest -fno-builtin \
	    -fsanitize=address,undefined -fno-omit-frame-pointer -o $@ guest/host/unit-shm.c

$(OUT)/test-static: guest/host/test-static.c
	@mkdir -p $(OUT)
	$(CC) $(GUEST_CFLAGS) -Wl,--build-id=none -o $@ guest/host/test-static.c

test:: $(OUT)/runtime.elf $(OUT)/fb-host $(OUT)/guest-unit $(OUT)/guest-unit-mm $(OUT)/guest-unit-ipc $(OUT)/guest-unit-shm $(OUT)/test-static
	sh guest/host/run-tests.sh $(OUT)
