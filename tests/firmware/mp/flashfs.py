# The tracker's flash as a MicroPython VFS with a size limit, mounted where the firmware keeps its
# data: a write past the limit raises OSError(ENOSPC), as a full LittleFS does. Files live in a
# directory of the port's own file system; only their total size is counted.
import os

ENOSPC = 28


class _File:
    def __init__(self, fs, f, path):
        self.fs = fs
        self.f = f
        self.path = path

    def write(self, data):
        if self.fs.used() + len(data) > self.fs.limit:
            raise OSError(ENOSPC)
        return self.f.write(data)

    def read(self, *a):
        return self.f.read(*a)

    def seek(self, *a):
        return self.f.seek(*a)

    def tell(self):
        return self.f.tell()

    def flush(self):
        return self.f.flush()

    def close(self):
        return self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.f.close()


class QuotaFS:
    def __init__(self, real_dir, limit):
        self.real = real_dir.rstrip("/")
        self.limit = limit

    def _p(self, path):
        return self.real + ("" if path.startswith("/") else "/") + path

    def used(self):
        n = 0
        for name in os.listdir(self.real):
            n += os.stat(self.real + "/" + name)[6]
        return n

    # --- the VFS protocol ---
    def mount(self, readonly, mkfs):
        pass

    def umount(self):
        pass

    def open(self, path, mode):
        return _File(self, open(self._p(path), mode), path)

    def stat(self, path):
        return os.stat(self._p(path))

    def ilistdir(self, path):
        return os.ilistdir(self._p(path))

    def remove(self, path):
        return os.remove(self._p(path))

    def rename(self, a, b):
        return os.rename(self._p(a), self._p(b))

    def mkdir(self, path):
        return os.mkdir(self._p(path))

    def rmdir(self, path):
        return os.rmdir(self._p(path))

    def chdir(self, path):
        pass

    def getcwd(self):
        return ""

    def statvfs(self, path):
        return (4096, 4096, self.limit // 4096, (self.limit - self.used()) // 4096, 0, 0, 0, 0, 0, 255)
