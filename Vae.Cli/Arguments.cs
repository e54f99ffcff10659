using System.Globalization;

namespace Vae.Cli;

/// <summary>Bad usage: a one-line message, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>Parsed <c>--name value</c> options and positional arguments of one verb, checked against the options it accepts.</summary>
public sealed class Arguments
{
    readonly Dictionary<string, string?> _options = new(StringComparer.Ordinal);
    readonly HashSet<string> _used = new(StringComparer.Ordinal);

    /// <summary>Positional arguments in order.</summary>
    public IReadOnlyList<string> Positional { get; }

    /// <summary>Parses <paramref name="args"/>; <paramref name="valued"/> are options that take a value,
    /// <paramref name="flags"/> options that do not.</summary>
    public Arguments(string verb, IEnumerable<string> args, IReadOnlyCollection<string> valued, IReadOnlyCollection<string> flags)
    {
        var positional = new List<string>();
        var list = args.ToList();
        for (int i = 0; i < list.Count; i++)
        {
            string a = list[i];
            if (!a.StartsWith("--", StringComparison.Ordinal) || a == "--") { positional.Add(a); continue; }
            string name = a[2..];
            string? inline = null;
            int eq = name.IndexOf('=');
            if (eq >= 0) { inline = name[(eq + 1)..]; name = name[..eq]; }
            if (flags.Contains(name))
            {
                if (inline is not null) throw new UsageException($"{verb}: --{name} takes no value");
                _options[name] = null;
            }
            else if (valued.Contains(name))
            {
                string? value = inline ?? (i + 1 < list.Count ? list[++i] : null);
                if (value is null) throw new UsageException($"{verb}: --{name} needs a value");
                _options[name] = value;
            }
            else
            {
                var known = valued.Concat(flags).Select(o => "--" + o).Order();
                throw new UsageException($"{verb}: unknown option --{name} (known: {string.Join(", ", known)})");
            }
        }
        Positional = positional;
    }

    /// <summary>Whether the option was given.</summary>
    public bool Has(string name) => _options.ContainsKey(name);

    /// <summary>The option's text, or <paramref name="fallback"/>.</summary>
    public string? String(string name, string? fallback = null) =>
        _options.TryGetValue(name, out var v) ? v : fallback;

    /// <summary>One of <paramref name="allowed"/>, or <paramref name="fallback"/>.</summary>
    public string Choice(string name, string fallback, params string[] allowed)
    {
        string v = String(name, fallback)!;
        if (!allowed.Contains(v)) throw new UsageException($"--{name}: expected one of {string.Join("|", allowed)}, got '{v}'");
        return v;
    }

    /// <summary>An integer in [<paramref name="min"/>, <paramref name="max"/>], or <paramref name="fallback"/>.</summary>
    public long Integer(string name, long fallback, long min = long.MinValue, long max = long.MaxValue)
    {
        if (!_options.TryGetValue(name, out var text)) return fallback;
        if (!TryParseInteger(text!, out long v)) throw new UsageException($"--{name}: expected an integer, got '{text}'");
        if (v < min || v > max) throw new UsageException($"--{name}: expected {Range(min, max)}, got {v}");
        return v;
    }

    /// <summary>A number in (<paramref name="exclusiveMin"/>, ∞), or <paramref name="fallback"/>.</summary>
    public double Number(string name, double fallback, double exclusiveMin = double.NegativeInfinity)
    {
        if (!_options.TryGetValue(name, out var text)) return fallback;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !double.IsFinite(v))
            throw new UsageException($"--{name}: expected a number, got '{text}'");
        if (v <= exclusiveMin) throw new UsageException($"--{name}: expected a number above {exclusiveMin.ToString(CultureInfo.InvariantCulture)}, got {text}");
        return v;
    }

    /// <summary>A comma-separated list of integers in [<paramref name="min"/>, <paramref name="max"/>], or <paramref name="fallback"/>.</summary>
    public IReadOnlyList<int> IntegerList(string name, IReadOnlyList<int> fallback, int min, int max)
    {
        if (!_options.TryGetValue(name, out var text)) return fallback;
        var values = new List<int>();
        foreach (string part in text!.Split(','))
        {
            if (!TryParseInteger(part.Trim(), out long v)) throw new UsageException($"--{name}: expected comma-separated integers, got '{text}'");
            if (v < min || v > max) throw new UsageException($"--{name}: expected integers from {min} to {max}, got {v}");
            if (!values.Contains((int)v)) values.Add((int)v);
        }
        return values;
    }

    /// <summary>--threads T (default: the logical processors), applied to libtorch; above the logical processors it warns,
    /// since libtorch's threads then share cores and run slower.</summary>
    public int Threads(TextWriter stderr)
    {
        int threads = (int)Integer("threads", Environment.ProcessorCount, 1, 1024);
        if (threads > Environment.ProcessorCount)
            stderr.WriteLine($"warning: --threads {threads} exceeds the {Environment.ProcessorCount} logical processors; libtorch's threads will share them and run slower");
        Vae.TorchRuntime.Threads = threads;
        return threads;
    }

    /// <summary>--step-size S or auto: the number, or null for section 5's choice (StepSizeSelection).</summary>
    public double? StepSizeOrAuto(double fallback) => String("step-size") == "auto" ? null : Number("step-size", fallback, 0);

    /// <summary>The options given, as <c>--name value</c> (or <c>--name</c> for a flag) tokens, except those named in
    /// <paramref name="except"/>: the command line to pass on to another process of this program.</summary>
    public IReadOnlyList<string> OptionsExcept(IReadOnlyCollection<string> except) =>
        [.. _options.Where(o => !except.Contains(o.Key)).SelectMany(o => o.Value is null ? new[] { "--" + o.Key } : ["--" + o.Key, o.Value])];

    /// <summary>Fails unless there are at most <paramref name="count"/> positional arguments.</summary>
    public void AtMostPositional(int count, string verb)
    {
        if (Positional.Count > count) throw new UsageException($"{verb}: unexpected argument '{Positional[count]}'");
    }

    static bool TryParseInteger(string text, out long v)
    {
        // Accept 1000000, 1e6 and 1_000_000 (budgets are written both ways).
        text = text.Replace("_", "");
        if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out v)) return true;
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && d == Math.Floor(d) && Math.Abs(d) < 9e18)
        { v = (long)d; return true; }
        return false;
    }

    static string Range(long min, long max) =>
        max == long.MaxValue ? $"an integer of at least {min}" : $"an integer from {min} to {max}";
}
