using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace Vae.Cli;

/// <summary>Bad usage: a one-line message, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>Typed options with their defaults, ranges and choices declared once: the parser checks them and the help
/// shows them. Integers accept 1000000, 1e6 and 1_000_000 (budgets are written all three ways).</summary>
static class Opt
{
    /// <summary>An integer option in [<paramref name="min"/>, <paramref name="max"/>] with a default.</summary>
    public static Option<long> Integer(string name, string description, long fallback, long min, long max = long.MaxValue) =>
        new(name) { Description = description, HelpName = "N", DefaultValueFactory = _ => fallback, CustomParser = r => ParseInteger(r, name, min, max) };

    /// <summary>An integer option in [<paramref name="min"/>, <paramref name="max"/>]; null when not given (the verb
    /// chooses, as the description says).</summary>
    public static Option<long?> OptionalInteger(string name, string description, long min, long max = long.MaxValue) =>
        new(name) { Description = description, HelpName = "N", CustomParser = r => ParseInteger(r, name, min, max) };

    /// <summary>A finite number in [<paramref name="min"/>, <paramref name="max"/>) with a default (above
    /// <paramref name="min"/> when <paramref name="minExclusive"/>).</summary>
    public static Option<double> Number(string name, string description, double fallback, double min, double max, bool minExclusive = false) =>
        new(name)
        {
            Description = description, HelpName = "X", DefaultValueFactory = _ => fallback,
            CustomParser = r =>
            {
                string text = r.Tokens[0].Value;
                if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !double.IsFinite(v))
                    r.AddError($"{name}: expected a number, got '{text}'");
                else if (v < min || (minExclusive && v == min) || v >= max)
                    r.AddError(string.Create(CultureInfo.InvariantCulture, $"{name}: expected a number {(minExclusive ? "above" : "of at least")} {min} and below {max}, got {v}"));
                return v;
            },
        };

    /// <summary>One of <paramref name="allowed"/>, <paramref name="fallback"/> by default (null: nothing given leaves
    /// the choice to the verb).</summary>
    public static Option<string> Choice(string name, string description, string? fallback, params string[] allowed)
    {
        var option = new Option<string>(name) { Description = description, HelpName = string.Join("|", allowed) };
        if (fallback is not null) option.DefaultValueFactory = _ => fallback;
        option.Validators.Add(r =>
        {
            string? v = r.Tokens.Count > 0 ? r.Tokens[0].Value : null;
            if (v is not null && !allowed.Contains(v)) r.AddError($"{name}: expected one of {string.Join("|", allowed)}, got '{v}'");
        });
        return option;
    }

    /// <summary>A text option (a path, a Slurm setting), null when not given.</summary>
    public static Option<string> Text(string name, string description, string helpName) =>
        new(name) { Description = description, HelpName = helpName };

    /// <summary>An option without a value.</summary>
    public static Option<bool> Flag(string name, string description) => new(name) { Description = description, Arity = ArgumentArity.Zero };

    /// <summary>A comma-separated list of integers in [<paramref name="min"/>, <paramref name="max"/>] (duplicates
    /// dropped). Read it with <see cref="Arguments.List"/>, which gives null when it is not given.</summary>
    public static Option<int[]> IntegerList(string name, string description, int min, int max) =>
        new(name)
        {
            Description = description, HelpName = "N,N,...",
            CustomParser = r =>
            {
                string text = r.Tokens[0].Value;
                var values = new List<int>();
                foreach (string part in text.Split(','))
                {
                    if (!TryParseInteger(part.Trim(), out long v)) { r.AddError($"{name}: expected comma-separated integers, got '{text}'"); return null; }
                    if (v < min || v > max) { r.AddError($"{name}: expected integers from {min} to {max}, got {v}"); return null; }
                    if (!values.Contains((int)v)) values.Add((int)v);
                }
                return [.. values];
            },
        };

    /// <summary>Adagrad's step size: a number above 0, or <c>auto</c> for section 5's choice (read with
    /// <see cref="Arguments.StepSize"/>).</summary>
    public static Option<string> StepSize(string description)
    {
        var option = new Option<string>("--step-size") { Description = description, HelpName = "S|auto", DefaultValueFactory = _ => "0.02" };
        option.Validators.Add(r =>
        {
            string text = r.Tokens.Count > 0 ? r.Tokens[0].Value : "0.02";
            if (text != "auto" && StepSizeValue(text) is not > 0) r.AddError($"--step-size: expected a number above 0 or auto, got '{text}'");
        });
        return option;
    }

    /// <summary>A step size's text as a number; null for auto (or anything that is not a finite number).</summary>
    public static double? StepSizeValue(string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v) ? v : null;

    static long ParseInteger(ArgumentResult r, string name, long min, long max)
    {
        string text = r.Tokens[0].Value;
        if (!TryParseInteger(text, out long v)) { r.AddError($"{name}: expected an integer, got '{text}'"); return 0; }
        if (v < min || v > max)
            r.AddError($"{name}: expected {(max == long.MaxValue ? $"an integer of at least {min}" : $"an integer from {min} to {max}")}, got {v}");
        return v;
    }

    static bool TryParseInteger(string text, out long v)
    {
        text = text.Replace("_", "");
        if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out v)) return true;
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && d == Math.Floor(d) && Math.Abs(d) < 9e18)
        { v = (long)d; return true; }
        return false;
    }
}

/// <summary>The options shared by several verbs, declared once.</summary>
static class Common
{
    public static readonly Option<long?> Threads = Opt.OptionalInteger("--threads", "libtorch threads (default: OMP_NUM_THREADS where set, else the logical processors; 1 for the tasks of an executor)", 1, 1024);
    public static readonly Option<long> Seed = Opt.Integer("--seed", "the seed of every random draw", 0, 0);
    public static readonly Option<string> Cache = Opt.Text("--cache", $"the data cache (default: ${Vae.Core.Data.Cache.EnvironmentVariable}, else $XDG_CACHE_HOME/vae, else ~/.cache/vae)", "DIR");
    public static readonly Option<string> FreyFace = Opt.Text("--frey-face", "a local frey_rawface.mat to use instead of downloading (or $VAE_FREY_FACE)", "FILE");
    public static readonly Option<string> Checkpoint = new("--checkpoint")
    {
        Description = "a checkpoint file, or a run directory holding one", HelpName = "FILE|DIR", Required = true,
    };
    public static readonly Option<string> Precision = Opt.Choice("--precision", "bfloat16 matrix multiplies (float32 weights) or float32 throughout", "float32", "float32", "bfloat16");
}

/// <summary>A parsed command line of one verb: typed values, and whether an option was given.</summary>
sealed class Arguments(ParseResult result)
{
    /// <summary>The option's value: as given, else its default (null for an option without one).</summary>
    public T Get<T>(Option<T> option) => result.GetValue(option)!;

    /// <summary>Whether the option was given on the command line.</summary>
    public bool Has(Option option) => result.GetResult(option) is { Implicit: false };

    /// <summary>An <see cref="Opt.IntegerList"/> option's values, or null when it is not given (GetValue reads an absent
    /// array option as an empty array, on which no default would apply).</summary>
    public int[]? List(Option<int[]> option) => Has(option) ? Get(option) : null;

    /// <summary>A --step-size option's value: the number, or null for auto.</summary>
    public double? StepSize(Option<string> option) => Opt.StepSizeValue(Get(option));

    /// <summary>The options given, as <c>--name value</c> (or <c>--name</c> for a flag) tokens, except those in
    /// <paramref name="except"/>: the command line to pass on to another process of this program.</summary>
    public IReadOnlyList<string> OptionsExcept(IEnumerable<Option> except)
    {
        var skip = except.ToHashSet();
        return [.. result.CommandResult.Children.OfType<OptionResult>()
            .Where(o => !o.Implicit && !skip.Contains(o.Option))
            .SelectMany(o => o.Tokens.Select(t => t.Value).Prepend(o.Option.Name))];
    }

    /// <summary>--threads T (default: OMP_NUM_THREADS where set, as libtorch and PyTorch default to it, else the logical
    /// processors), applied to libtorch; above the logical processors it warns, since libtorch's threads then share cores
    /// and run slower.</summary>
    public int Threads(TextWriter stderr)
    {
        long? given = Get(Common.Threads);
        int? openMp = given is null ? OpenMpThreads() : null;
        int threads = (int)(given ?? openMp ?? Environment.ProcessorCount);
        if (threads > Environment.ProcessorCount)
            stderr.WriteLine($"warning: {(openMp is null ? "--threads " : "OMP_NUM_THREADS=")}{threads} exceeds the {Environment.ProcessorCount} logical processors; libtorch's threads will share them and run slower");
        Vae.TorchRuntime.Threads = threads;
        return threads;
    }

    /// <summary>OMP_NUM_THREADS as a thread count: a whole number from 1 to 1024, or a list of them (one per nesting level)
    /// whose first is the count, as OpenMP reads it; unset or empty is none, anything else a usage error.</summary>
    static int? OpenMpThreads()
    {
        string? value = Environment.GetEnvironmentVariable("OMP_NUM_THREADS");
        if (string.IsNullOrWhiteSpace(value)) return null;
        return int.TryParse(value.Split(',')[0].Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) && n is > 0 and <= 1024
            ? n
            : throw new UsageException($"OMP_NUM_THREADS={value}: expected a positive whole number of threads, at most 1024 (or unset it and pass --threads)");
    }
}
