/**
 * The seed's Consumer printed `DateTime.Now.ToString()` under .NET's invariant culture: `12/24/2019 14:42:42`,
 * month/day/year and a 24-hour clock, local time. Log scrapers written for the seed keep matching.
 */
const two = (n: number): string => String(n).padStart(2, '0');

export function formatInvariant(d: Date): string {
  return `${two(d.getMonth() + 1)}/${two(d.getDate())}/${String(d.getFullYear()).padStart(4, '0')} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** The seed's line: `Hello World -- Received at: 12/24/2019 14:42:42 -- Finished at: 12/24/2019 14:42:47`. */
export function processedLine(text: string, received: Date, finished: Date): string {
  return `${text} -- Received at: ${formatInvariant(received)} -- Finished at: ${formatInvariant(finished)}`;
}
