/// The property tests as a console program (Expecto's adapter does not run under `dotnet test` here).
/// Runs sequenced, with libtorch on one thread; prints "N passed, N failed" last; exit code 0 when all pass.
module Vae.Properties.Program

open Expecto

[<EntryPoint>]
let main argv =
    Vae.Core.Torch.setThreads 1
    // MKL's kernels as vae chooses them, before any multiply.
    printfn "MKL: %A" (Vae.Core.NativeTuning.configureMkl ())
    printfn "property seed: %d (VAE_PROPERTY_SEED replays a run)" Vae.Properties.Generators.propertySeed
    let mutable counts = (0, 0)
    let record (s: Impl.TestRunSummary) =
        counts <- (s.passed.Length, s.failed.Length + s.errored.Length)
    let code =
        Tests.runTestsInAssemblyWithCLIArgs
            [ CLIArguments.Sequenced; CLIArguments.No_Spinner
              CLIArguments.Append_Summary_Handler(SummaryHandler record) ]
            argv
    let passed, failed = counts
    printfn "%d passed, %d failed" passed failed
    code
