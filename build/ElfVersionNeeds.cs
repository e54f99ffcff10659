// The libtorch load fix: reads an ELF shared library's symbol-version needs and marks a need weak
// when the system's library lacks that version and no relocation depends on it.
//
// Compiled twice: by MSBuild's RoslynCodeTaskFactory as the build task (below, outside
// VAE_ELF_TESTS), and by Vae.Tests, which defines VAE_ELF_TESTS and tests the pure logic.
#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;

namespace Vae.Build
{
    /// <summary>A symbol-version need (an Elf64_Vernaux entry of .gnu.version_r).</summary>
    public sealed class VersionNeed
    {
        /// <summary>Creates a version need.</summary>
        public VersionNeed(string file, string version, ushort index, ushort flags, long flagsOffset)
        {
            File = file; Version = version; Index = index; Flags = flags; FlagsOffset = flagsOffset;
        }
        /// <summary>The library the version is needed from (vn_file).</summary>
        public string File { get; }
        /// <summary>The version name (vna_name), e.g. GLIBCXX_3.4.32.</summary>
        public string Version { get; }
        /// <summary>The version index that .gnu.version entries use (vna_other).</summary>
        public ushort Index { get; }
        /// <summary>vna_flags; bit 0x2 is VER_FLG_WEAK.</summary>
        public ushort Flags { get; }
        /// <summary>The file offset of vna_flags.</summary>
        public long FlagsOffset { get; }
        /// <summary>Whether the need is weak: a missing version is then not an error for the loader.</summary>
        public bool IsWeak => (Flags & ElfFile.VerFlagWeak) != 0;
    }

    /// <summary>Thrown when a file is not an ELF file this reader understands, or is malformed.</summary>
    public sealed class ElfFormatException : Exception
    {
        /// <summary>Creates the exception.</summary>
        public ElfFormatException(string message) : base(message) { }
    }

    /// <summary>A minimal reader for 64-bit little-endian ELF shared libraries (section headers,
    /// dynamic symbols, symbol versioning, relocations).</summary>
    public sealed class ElfFile
    {
        /// <summary>VER_FLG_WEAK.</summary>
        public const ushort VerFlagWeak = 0x2;
        const uint ShtRela = 4, ShtRel = 9, ShtDynsym = 11;
        const uint ShtGnuVerdef = 0x6ffffffd, ShtGnuVerneed = 0x6ffffffe, ShtGnuVersym = 0x6fffffff;

        readonly byte[] _bytes;
        readonly string _name;
        readonly List<Section> _sections = new List<Section>();

        sealed class Section
        {
            public uint Type; public long Offset; public long Size; public uint Link; public long EntSize;
        }

        /// <summary>Parses the section headers of <paramref name="bytes"/>; <paramref name="name"/> is used in errors.</summary>
        public ElfFile(byte[] bytes, string name)
        {
            _bytes = bytes; _name = name;
            if (bytes.Length < 64 || bytes[0] != 0x7f || bytes[1] != (byte)'E' || bytes[2] != (byte)'L' || bytes[3] != (byte)'F')
                throw Fail("not an ELF file (expected the magic bytes 7F 45 4C 46)");
            if (bytes[4] != 2) throw Fail("not a 64-bit ELF file (EI_CLASS must be 2)");
            if (bytes[5] != 1) throw Fail("not a little-endian ELF file (EI_DATA must be 1)");
            long shoff = I64(0x28);
            int shentsize = U16(0x3A), shnum = U16(0x3C);
            if (shentsize != 64) throw Fail($"section header size is {shentsize}, expected 64");
            if (shoff <= 0 || shoff + (long)shnum * 64 > bytes.Length) throw Fail("section headers lie outside the file");
            for (int i = 0; i < shnum; i++)
            {
                long h = shoff + i * 64L;
                var s = new Section { Type = U32(h + 4), Offset = I64(h + 24), Size = I64(h + 32), Link = U32(h + 40), EntSize = I64(h + 56) };
                if (s.Type != 8 /* SHT_NOBITS */ && (s.Offset < 0 || s.Size < 0 || s.Offset + s.Size > bytes.Length))
                    throw Fail($"section {i} lies outside the file");
                _sections.Add(s);
            }
        }

        Exception Fail(string what) => new ElfFormatException($"{_name}: {what}");
        ushort U16(long o) { Check(o, 2); return (ushort)(_bytes[o] | _bytes[o + 1] << 8); }
        uint U32(long o) { Check(o, 4); return BitConverter.ToUInt32(_bytes, (int)o); }
        long I64(long o) { Check(o, 8); return BitConverter.ToInt64(_bytes, (int)o); }
        void Check(long o, int n) { if (o < 0 || o + n > _bytes.Length) throw Fail($"read of {n} bytes at offset {o} lies outside the file"); }

        string Str(Section strtab, uint offset)
        {
            long start = strtab.Offset + offset;
            if (offset >= strtab.Size) throw Fail($"string offset {offset} lies outside its string table");
            long end = start;
            while (end < strtab.Offset + strtab.Size && _bytes[end] != 0) end++;
            return Encoding.ASCII.GetString(_bytes, (int)start, (int)(end - start));
        }

        Section? Find(uint type) => _sections.FirstOrDefault(s => s.Type == type);
        Section LinkOf(Section s) => s.Link < _sections.Count ? _sections[(int)s.Link] : throw Fail("a section links to a missing section");

        /// <summary>All entries of .gnu.version_r (empty when the library needs no versions).</summary>
        public IReadOnlyList<VersionNeed> VersionNeeds()
        {
            var result = new List<VersionNeed>();
            var sec = Find(ShtGnuVerneed);
            if (sec == null) return result;
            var strtab = LinkOf(sec);
            long vn = sec.Offset;
            for (int guard = 0; guard < 10000; guard++)
            {
                ushort cnt = U16(vn + 2);
                string file = Str(strtab, U32(vn + 4));
                long aux = vn + U32(vn + 8);
                for (int j = 0; j < cnt; j++)
                {
                    result.Add(new VersionNeed(file, Str(strtab, U32(aux + 8)), U16(aux + 6), U16(aux + 4), aux + 4));
                    uint nextAux = U32(aux + 12);
                    if (nextAux == 0) break;
                    aux += nextAux;
                }
                uint next = U32(vn + 12);
                if (next == 0) return result;
                vn += next;
            }
            throw Fail(".gnu.version_r does not terminate");
        }

        /// <summary>The version names a library defines (.gnu.version_d), e.g. GLIBCXX_3.4.30.</summary>
        public IReadOnlyList<string> VersionDefinitions()
        {
            var result = new List<string>();
            var sec = Find(ShtGnuVerdef);
            if (sec == null) return result;
            var strtab = LinkOf(sec);
            long vd = sec.Offset;
            for (int guard = 0; guard < 10000; guard++)
            {
                if (U16(vd + 6) > 0) result.Add(Str(strtab, U32(vd + U32(vd + 12))));
                uint next = U32(vd + 16);
                if (next == 0) return result;
                vd += next;
            }
            throw Fail(".gnu.version_d does not terminate");
        }

        /// <summary>Names of the dynamic symbols bound to version index <paramref name="index"/>.</summary>
        public IReadOnlyList<string> SymbolsWithVersion(ushort index)
        {
            var dynsym = Find(ShtDynsym) ?? throw Fail("no .dynsym section");
            var versym = Find(ShtGnuVersym) ?? throw Fail("no .gnu.version section");
            var strtab = LinkOf(dynsym);
            long count = dynsym.Size / 24;
            if (versym.Size / 2 != count) throw Fail(".gnu.version and .dynsym disagree on the number of symbols");
            var result = new List<string>();
            for (long i = 0; i < count; i++)
                if ((U16(versym.Offset + 2 * i) & 0x7fff) == index)
                    result.Add(Str(strtab, U32(dynsym.Offset + 24 * i)));
            return result;
        }

        /// <summary>The file offset of the .gnu.version entry of the first dynamic symbol named <paramref name="symbol"/>.</summary>
        public long SymbolVersionOffset(string symbol)
        {
            var dynsym = Find(ShtDynsym) ?? throw Fail("no .dynsym section");
            var versym = Find(ShtGnuVersym) ?? throw Fail("no .gnu.version section");
            var strtab = LinkOf(dynsym);
            for (long i = 0; i < dynsym.Size / 24; i++)
                if (Str(strtab, U32(dynsym.Offset + 24 * i)) == symbol) return versym.Offset + 2 * i;
            throw Fail($"no dynamic symbol {symbol}");
        }

        /// <summary>Names of the dynamic symbols that some relocation (.rela.* or .rel.*) refers to.</summary>
        public ISet<string> RelocatedSymbols()
        {
            var dynsym = Find(ShtDynsym) ?? throw Fail("no .dynsym section");
            var strtab = LinkOf(dynsym);
            var result = new HashSet<string>(StringComparer.Ordinal);
            foreach (var s in _sections.Where(s => s.Type == ShtRela || s.Type == ShtRel))
            {
                long entry = s.Type == ShtRela ? 24 : 16;
                for (long o = s.Offset; o + entry <= s.Offset + s.Size; o += entry)
                {
                    long sym = (long)((ulong)I64(o + 8) >> 32);
                    if (sym != 0) result.Add(Str(strtab, U32(dynsym.Offset + 24 * sym)));
                }
            }
            return result;
        }
    }

    /// <summary>The outcome of <see cref="LibTorchLoadFix.Plan"/>.</summary>
    public sealed class LoadFixPlan
    {
        /// <summary>Creates a plan.</summary>
        public LoadFixPlan(IReadOnlyList<VersionNeed> toWeaken, IReadOnlyList<string> alreadyWeak, IReadOnlyList<string> symbols)
        {
            ToWeaken = toWeaken; AlreadyWeak = alreadyWeak; Symbols = symbols;
        }
        /// <summary>Needs the system lacks and that must be marked weak.</summary>
        public IReadOnlyList<VersionNeed> ToWeaken { get; }
        /// <summary>Versions the system lacks whose needs are already weak (a patched file).</summary>
        public IReadOnlyList<string> AlreadyWeak { get; }
        /// <summary>The symbols bound to the missing versions.</summary>
        public IReadOnlyList<string> Symbols { get; }
    }

    /// <summary>Decides and applies the weak-version patch of TorchSharp's LibTorchSharp.</summary>
    public static class LibTorchLoadFix
    {
        /// <summary>Finds the needs of <paramref name="library"/> on <paramref name="needFile"/> (e.g.
        /// libstdc++.so.6) whose version <paramref name="systemVersions"/> lacks. Throws when any
        /// symbol bound to such a version is used by a relocation: that library really needs it.</summary>
        public static LoadFixPlan Plan(ElfFile library, string libraryName, string needFile, ICollection<string> systemVersions)
        {
            var missing = library.VersionNeeds().Where(n => n.File == needFile && !systemVersions.Contains(n.Version)).ToList();
            var relocated = library.RelocatedSymbols();
            var symbols = new List<string>();
            foreach (var need in missing)
            {
                var bound = library.SymbolsWithVersion(need.Index);
                var used = bound.Where(relocated.Contains).ToList();
                if (used.Count > 0)
                    throw new ElfFormatException(
                        $"{libraryName}: needs {need.Version} from {needFile}, which this system's library lacks, and " +
                        $"relocations use symbols of that version ({string.Join(", ", used)}); marking the need weak " +
                        "would break the library. Install a newer libstdc++ or a TorchSharp built for this system " +
                        "(turn this check off with -p:VaeLibTorchLoadFix=false).");
                symbols.AddRange(bound);
            }
            return new LoadFixPlan(
                missing.Where(n => !n.IsWeak).ToList(),
                missing.Where(n => n.IsWeak).Select(n => n.Version).ToList(),
                symbols);
        }

        /// <summary>Returns a copy of <paramref name="bytes"/> with VER_FLG_WEAK set on each need in <paramref name="needs"/>.</summary>
        public static byte[] Weaken(byte[] bytes, IEnumerable<VersionNeed> needs)
        {
            var copy = (byte[])bytes.Clone();
            foreach (var n in needs)
            {
                ushort flags = (ushort)(n.Flags | ElfFile.VerFlagWeak);
                copy[n.FlagsOffset] = (byte)flags;
                copy[n.FlagsOffset + 1] = (byte)(flags >> 8);
            }
            return copy;
        }

        /// <summary>The first libstdc++.so.6 found in the standard library directories, or null.</summary>
        public static string? FindSystemLibrary(string fileName)
        {
            string[] dirs =
            {
                "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
                "/usr/lib64", "/lib64", "/usr/lib", "/lib",
            };
            return dirs.Select(d => Path.Combine(d, fileName)).FirstOrDefault(System.IO.File.Exists);
        }
    }

#if !VAE_ELF_TESTS
    /// <summary>MSBuild task: patches the LibTorchSharp copies in a build or publish output.</summary>
    public sealed class PatchLibTorchSharp : Microsoft.Build.Utilities.Task
    {
        /// <summary>The libLibTorchSharp.so files to patch (in the output folder, never the package cache).</summary>
        [Microsoft.Build.Framework.Required]
        public Microsoft.Build.Framework.ITaskItem[] Libraries { get; set; } = Array.Empty<Microsoft.Build.Framework.ITaskItem>();

        /// <inheritdoc />
        public override bool Execute()
        {
            const string needFile = "libstdc++.so.6";
            var system = LibTorchLoadFix.FindSystemLibrary(needFile);
            if (system == null)
            {
                Log.LogWarning($"Vae libtorch load fix: no system {needFile} found; LibTorchSharp left unchanged.");
                return true;
            }
            var systemVersions = new HashSet<string>(new ElfFile(System.IO.File.ReadAllBytes(system), system).VersionDefinitions());
            foreach (var item in Libraries)
            {
                string path = item.GetMetadata("FullPath");
                try
                {
                    var bytes = System.IO.File.ReadAllBytes(path);
                    var plan = LibTorchLoadFix.Plan(new ElfFile(bytes, path), path, needFile, systemVersions);
                    if (plan.ToWeaken.Count == 0)
                    {
                        Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low,
                            plan.AlreadyWeak.Count == 0 ? $"Vae libtorch load fix: {system} has every version {path} needs."
                                                        : $"Vae libtorch load fix: {path} already patched.");
                        continue;
                    }
                    var patched = LibTorchLoadFix.Weaken(bytes, plan.ToWeaken);
                    // Write beside the target and rename over it: a hard link into the package cache
                    // is replaced, never written through, and a crash leaves no half-written library.
                    string temp = path + ".vae-tmp";
                    System.IO.File.Copy(path, temp, true);
                    System.IO.File.WriteAllBytes(temp, patched);
                    System.IO.File.Replace(temp, path, null);
                    Log.LogMessage(Microsoft.Build.Framework.MessageImportance.High,
                        $"Vae libtorch load fix: marked {string.Join(", ", plan.ToWeaken.Select(n => n.Version))} weak in {path} " +
                        $"(bound only to unrelocated {string.Join(", ", plan.Symbols)}; {system} lacks it).");
                }
                catch (ElfFormatException e)
                {
                    Log.LogError(e.Message);
                }
            }
            return !Log.HasLoggedErrors;
        }
    }
#endif
}
