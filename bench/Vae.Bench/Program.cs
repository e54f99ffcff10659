// Vae.Bench: the paired throughput benchmark (`dotnet run --project bench/Vae.Bench -c Release -- [options]`).
using System.CommandLine;
using Vae;
using Vae.Bench;
using Vae.Cli;

var parse = Bench.Root(Console.Out, Console.Error).Parse(args);
if (parse.Errors.Count > 0)
{
    Console.Error.WriteLine($"vae-bench: {parse.Errors[0].Message}");
    return 2;
}
// The benchmark measures Vae as `vae` runs it (its native tuning, unless the environment turns it off); the reference
// worker keeps MKL's and glibc's defaults, as a straightforward program would.
if (parse.CommandResult.Command.Name != Bench.ReferenceWorker && parse.Action is not System.CommandLine.Help.HelpAction)
    Bench.Tuning = NativeTuning.Apply().Description;
try
{
    return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (UsageException e)
{
    Console.Error.WriteLine($"vae-bench: {e.Message}");
    return 2;
}
