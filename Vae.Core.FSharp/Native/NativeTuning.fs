namespace Vae.Core

open System.Runtime.InteropServices
open TorchSharp

/// glibc's malloc settings (Linux only).
module internal GlibcMalloc =
    [<DllImport("libc.so.6", EntryPoint = "mallopt")>]
    extern int mallopt(int param, int value)
    /// mallopt's parameter numbers (malloc.h).
    let [<Literal>] TrimThreshold = -1
    let [<Literal>] MmapThreshold = -3

/// Page protection (Linux only).
module internal Libc =
    [<DllImport("libc.so.6", EntryPoint = "mprotect", SetLastError = true)>]
    extern int mprotect(nativeint address, unativeint length, int protection)
    /// mprotect's flags (sys/mman.h).
    let [<Literal>] Read = 1
    let [<Literal>] Write = 2
    let [<Literal>] Execute = 4

/// What NativeTuning.useMklAvx512 did.
type MklDispatch =
    /// MKL's vendor check now answers "Intel", so its sgemm takes its AVX-512 kernels on this AMD CPU.
    | Avx512OnAmd
    /// Left as it was, for the reason given (another vendor, no AVX-512, not Linux x64, turned off, ...).
    | Unchanged of reason: string

/// A function of no arguments returning a C int (MKL's vendor check).
type internal IntFunction = delegate of unit -> int

/// What NativeTuning.apply did: MKL's kernel choice and glibc's allocator, each with a description.
type NativeTuningReport = { Mkl: MklDispatch; RetainsFreedMemory: bool }

/// The process-wide speed settings, in one opt-in place: MKL's AVX-512 kernels on AMD CPUs (useMklAvx512) and glibc's
/// allocator keeping freed memory (retainFreedMemory). Neither changes what is computed beyond float32 rounding (the
/// MKL kernels sum in another order). The vae command applies both at start-up (--native-tuning off keeps neither);
/// a library or script opts in, before its first matrix multiply.
[<RequireQualifiedAccess>]
module NativeTuning =

    /// Makes glibc's malloc keep freed memory for reuse: the mmap threshold at its maximum (32 MB) and
    /// no trimming. libtorch allocates every intermediate tensor with malloc; a training step's tensors
    /// otherwise can come from mmap and go back to the kernel each step (PERFORMANCE.md measures the cost).
    /// Memory stays flat: the same blocks are reused step after step. Process-wide; false where glibc is absent.
    let retainFreedMemory () : bool =
        if not (RuntimeInformation.IsOSPlatform OSPlatform.Linux) then false
        else
            try
                GlibcMalloc.mallopt (GlibcMalloc.MmapThreshold, 32 * 1024 * 1024) = 1
                && GlibcMalloc.mallopt (GlibcMalloc.TrimThreshold, System.Int32.MaxValue) = 1
            with :? System.DllNotFoundException | :? System.EntryPointNotFoundException -> false

    /// Lets libtorch's MKL use its AVX-512 matrix-multiply kernels on AMD CPUs with AVX-512 (Zen 4 and later).
    /// libtorch links Intel's oneMKL, whose dispatcher gives any non-Intel CPU its AVX2 kernels, although the
    /// AVX-512 kernels need only AVX-512 F, BW, DQ and VL (PERFORMANCE.md compares the two). This makes MKL's exported vendor check, mkl_serv_intel_cpu_true,
    /// return 1 (its first six bytes become `mov eax, 1; ret`); MKL still picks among its Intel code paths by
    /// the CPU's feature flags. Linux x64 only. Call it before libtorch's first matrix multiply: MKL chooses its
    /// kernels once, at its first call, so a later call has no effect. The AVX-512 kernels sum in another order
    /// than the AVX2 ones, so float32 results differ at the level of rounding (`vae` applies this at start-up;
    /// VAE_MKL=default there keeps MKL's own choice and reproduces results recorded before it).
    let useMklAvx512 () : MklDispatch =
        let x86 = System.Runtime.Intrinsics.X86.X86Base.IsSupported
        let vendor () =
            let struct (_, b, c, d) = System.Runtime.Intrinsics.X86.X86Base.CpuId(0, 0)
            [| b; d; c |] |> Array.collect System.BitConverter.GetBytes |> System.Text.Encoding.ASCII.GetString
        let avx512 () =
            System.Runtime.Intrinsics.X86.Avx512F.IsSupported && System.Runtime.Intrinsics.X86.Avx512BW.IsSupported && System.Runtime.Intrinsics.X86.Avx512DQ.IsSupported
            && System.Runtime.Intrinsics.X86.Avx512F.VL.IsSupported
        if not (RuntimeInformation.IsOSPlatform OSPlatform.Linux) || RuntimeInformation.ProcessArchitecture <> Architecture.X64 || not x86 then
            Unchanged "not Linux x64"
        elif vendor () <> "AuthenticAMD" then Unchanged (sprintf "%s CPU: MKL's own dispatch applies" (vendor ()))
        elif not (avx512 ()) then Unchanged "no AVX-512 F/BW/DQ/VL: MKL's AVX2 kernels are the right ones"
        else
            Torch.load () |> ignore
            let mutable library = 0n
            let mutable check = 0n
            if not (NativeLibrary.TryLoad("libtorch_cpu.so", &library) && NativeLibrary.TryGetExport(library, "mkl_serv_intel_cpu_true", &check)) then
                Unchanged "libtorch_cpu.so exports no mkl_serv_intel_cpu_true (not an MKL build)"
            else
                let patch = [| 0xB8uy; 1uy; 0uy; 0uy; 0uy; 0xC3uy |] // mov eax, 1; ret
                let current = Array.zeroCreate<byte> patch.Length
                Marshal.Copy(check, current, 0, patch.Length)
                let page = nativeint System.Environment.SystemPageSize
                let start = check &&& ~~~(page - 1n)
                let length = unativeint ((check + nativeint patch.Length - start + page - 1n) &&& ~~~(page - 1n))
                let writable =
                    current = patch || Libc.mprotect (start, length, Libc.Read ||| Libc.Write ||| Libc.Execute) = 0
                if not writable then
                    Unchanged (sprintf "mprotect refused to make MKL's vendor check writable (errno %d)" (Marshal.GetLastPInvokeError ()))
                else
                    if current <> patch then
                        Marshal.Copy(patch, 0, check, patch.Length)
                        Libc.mprotect (start, length, Libc.Read ||| Libc.Execute) |> ignore
                    if Marshal.GetDelegateForFunctionPointer<IntFunction>(check).Invoke () = 1 then Avx512OnAmd
                    else failwith "useMklAvx512: MKL's vendor check still answers 0 after it was patched"

    /// useMklAvx512 unless the environment variable VAE_MKL is "default", which keeps MKL's own choice (and so
    /// reproduces float32 results recorded with it). What vae, the tests and the scripts call at start-up.
    let configureMkl () : MklDispatch =
        if System.Environment.GetEnvironmentVariable "VAE_MKL" = "default" then Unchanged "VAE_MKL=default"
        else useMklAvx512 ()

    /// Both settings, unless the environment says otherwise: VAE_MKL=default keeps MKL's own kernel choice, and
    /// VAE_MALLOC=default glibc's own allocator settings.
    let apply () : NativeTuningReport =
        let retains = System.Environment.GetEnvironmentVariable "VAE_MALLOC" <> "default" && retainFreedMemory ()
        { Mkl = configureMkl (); RetainsFreedMemory = retains }
